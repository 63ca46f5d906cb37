"""Where handlers and the service's own background work run.

Handlers run on native threads, never on the thread or greenlet answering WeChat: a handler that
sleeps, hangs, calls a slow LLM or burns CPU keeps its thread and nothing else, so other pushes
are answered meanwhile and every attempt leaves on time (the interpreter switches threads every
few milliseconds, so even a CPU-bound handler cannot starve the answers).

Under a gevent worker (``gunicorn.conf.py``'s ``GeventWorker``, its default) every request is a
greenlet, so thousands of attempts can wait for their handlers at the cost of a few kilobytes
each. Every push crosses to a handler thread and back, so the crossing is kept lean: a handler
thread takes work from a C ``SimpleQueue``, and a finished run wakes the greenlets waiting for
it through one gevent async watcher per hub, which also gathers the runs that finish between two
turns of the loop into one wake-up. That costs about 15 µs of CPU a push, where a standard
``ThreadPoolExecutor`` with a gevent ``AsyncResult`` per wait cost 75 µs (its ``Future`` alone,
with a ``Condition`` each, costs 20 µs) and gevent's own thread pool, written in Python, 120 µs.

The service's own work that may block (late delivery, the typing indicator, recording a result
nobody waited for) runs on a few native threads of its own, so it never holds up the greenlets
answering WeChat, and can use the same locks handlers use.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Generic, TypeVar

import gevent
from gevent import monkey
from gevent.hub import Waiter

from ..threads import cooperative

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
Work = Callable[[], object]

#: Threads for the service's own background work: each call it makes is short (an API call
#: with a timeout, a store write), and a burst of late deliveries waits its turn.
BACKGROUND_THREADS = 16


def _warn_if_threading_patched() -> None:
    if monkey.is_module_patched("threading"):
        logger.warning(
            "gevent patched threading (gunicorn -k gevent?): handlers run as greenlets, and"
            " one that burns CPU or blocks in C code holds up every push of its worker; serve"
            " with gunicorn.conf.py's own gevent worker (GUNICORN_WORKER_CLASS unset) instead"
        )


class HandlerRun(Generic[_T]):
    """A handler's run on a pool thread: a future with only what the service asks of one.

    ``concurrent.futures.Future`` would do, at 20 µs of CPU a push for the ``Condition`` it
    makes and notifies; nothing here waits on a condition. Waiting is :meth:`HandlerPool.wait`'s.
    """

    __slots__ = ("_lock", "_done", "_value", "_error", "_callbacks")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = False
        self._value: _T | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[HandlerRun[_T]], object]] = []

    def done(self) -> bool:
        """Whether the run has finished, with a value or an error."""
        return self._done

    def result(self) -> _T:
        """What the work returned, blocking this native thread until it finishes; what it
        raised is raised again. Greenlets wait with :meth:`HandlerPool.wait` instead."""
        if not self._done:
            _wait_natively(self, None)
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]

    def add_done_callback(self, callback: Callable[[HandlerRun[_T]], object]) -> None:
        """Call ``callback(run)`` once the run finishes: at once if it has, else on the
        handler's thread as it finishes."""
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        _call_back(callback, self)

    def _run(self, work: Callable[[], _T]) -> None:
        try:
            value, error = work(), None
        except BaseException as e:  # kept for whoever waits, as a Future keeps it
            value, error = None, e
        with self._lock:
            self._value, self._error, self._done = value, error, True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            _call_back(callback, self)


def _call_back(callback: Callable[[HandlerRun[Any]], object], run: HandlerRun[Any]) -> None:
    try:
        callback(run)
    except Exception:
        logger.exception("a callback of a handler run failed")


class _Wakeups:
    """Wakes greenlets of one hub waiting for runs that finish on other threads.

    Handler threads append the waiters of finished runs and signal the hub's async watcher;
    the hub drains them all in one turn of its loop, however many finished meanwhile.
    """

    def __init__(self) -> None:
        self._ready: collections.deque[Waiter] = collections.deque()
        self._watcher = gevent.get_hub().loop.async_()
        self._watcher.start(self._drain)

    def wake(self, waiter: Waiter) -> None:
        """Resume ``waiter``'s greenlet; callable from any thread."""
        self._ready.append(waiter)
        self._watcher.send()

    def _drain(self) -> None:
        while self._ready:
            self._ready.popleft().switch(None)


def _wait_natively(run: HandlerRun[Any], timeout: float | None) -> bool:
    """Block this native thread until ``run`` finishes or ``timeout`` passes; whether it did."""
    finished = threading.Event()
    run.add_done_callback(lambda _: finished.set())
    return finished.wait(timeout)


#: What a timed-out wait is resumed with, told apart from a run's wake-up.
_TIMED_OUT = object()


class HandlerPool:
    """Native threads for handlers, plus background work and timers for the service itself.

    :param threads: the most handlers that may run at once in this process; more wait for a
        free thread. Threads are started on demand.
    """

    def __init__(self, threads: int) -> None:
        self._size = threads
        self._work: queue.SimpleQueue[tuple[HandlerRun[Any], Callable[[], Any]] | None]
        self._work = queue.SimpleQueue()
        self._handlers: list[threading.Thread] = []
        #: Handler threads free for the next run (an over-count once all were busy at once,
        #: when no more may start anyway).
        self._idle = 0
        self._background: ThreadPoolExecutor | None = None
        self._timers = _Timers(self.background)
        self._wakeups = threading.local()
        # What shutdown waits for. A plain set, whose add and discard are atomic: no lock on
        # the path of every push.
        self._pending: set[HandlerRun[Any] | Future[Any]] = set()
        self._lock = threading.Lock()

    def run(self, work: Callable[[], _T]) -> HandlerRun[_T]:
        """Start ``work`` (a handler) on a native thread; :meth:`wait` for its result.

        Callbacks added to the run happen on the handler's thread as it finishes: hand anything
        that does I/O to :meth:`background`.
        """
        run: HandlerRun[_T] = HandlerRun()
        self._track(run)
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif len(self._handlers) < self._size:
                self._start_handler_thread()
        self._work.put((run, work))
        return run

    def wait(self, run: HandlerRun[_T], timeout: float) -> _T:
        """The result of ``run``, waiting at most ``timeout`` seconds.

        Under gevent the calling greenlet yields meanwhile, so other requests go on.

        :raises TimeoutError: (``concurrent.futures``') it was not done in time.
        """
        if not run.done():
            woke = self._wait_cooperatively(run, timeout) if cooperative() else None
            if woke is None:
                woke = _wait_natively(run, timeout)
            if not woke:
                raise FutureTimeout
        return run.result()

    def _wait_cooperatively(self, run: HandlerRun[Any], timeout: float) -> bool | None:
        """Yield this greenlet until ``run`` finishes or ``timeout`` passes; whether it did.

        None when the calling thread has no gevent loop running (a native thread of a
        patched process), which must wait natively.
        """
        hub = gevent.get_hub()
        if gevent.getcurrent() is hub:
            return None
        wakeups: _Wakeups | None = getattr(self._wakeups, "here", None)
        if wakeups is None:
            wakeups = self._wakeups.here = _Wakeups()
        waiter = Waiter(hub)
        run.add_done_callback(lambda _: wakeups.wake(waiter))
        timer = hub.loop.timer(timeout)
        timer.start(waiter.switch, _TIMED_OUT)
        try:
            return waiter.get() is not _TIMED_OUT or run.done()
        finally:
            timer.close()

    def background(self, work: Work) -> None:
        """Run the service's own short work (late delivery, typing indicator) on a native
        thread; callable from any thread or greenlet."""
        with self._lock:
            if self._background is None:
                self._background = ThreadPoolExecutor(
                    BACKGROUND_THREADS, thread_name_prefix="wx-service"
                )
            executor = self._background
        self._track(executor.submit(work))

    def later(self, delay: float, work: Work) -> None:
        """Run ``work`` in the background after ``delay`` seconds (late delivery checks).

        During shutdown there is no later: the work runs at once, on the calling thread.
        """
        if not self._timers.add(delay, work):
            work()

    def every(self, interval: float, work: Work) -> None:
        """Run ``work`` in the background every ``interval`` seconds until shutdown, which
        stops it (the round due then does not run)."""

        def again() -> None:
            try:
                work()
            finally:
                self._timers.add(interval, again, recurring=True)

        self._timers.add(interval, again, recurring=True)

    def shutdown(self) -> None:
        """Finish everything now: due-later work runs at once, running handlers complete.

        Late work is run rather than dropped because it delivers replies users are owed.
        """
        for work in self._timers.close():
            self.background(work)
        while self._pending:
            for pending in list(self._pending):
                try:
                    pending.result()
                except Exception:  # its owner logged it; shutdown only waits
                    pass
        with self._lock:
            handlers, self._handlers = self._handlers, []
        for _ in handlers:
            self._work.put(None)
        for thread in handlers:
            thread.join()
        if self._background is not None:
            self._background.shutdown(wait=True)

    def _start_handler_thread(self) -> None:
        """Start one more handler thread (under the pool's lock)."""
        if not self._handlers:
            _warn_if_threading_patched()
        thread = threading.Thread(
            target=self._serve, name=f"wx-handler_{len(self._handlers)}", daemon=True
        )
        thread.start()
        self._handlers.append(thread)

    def _serve(self) -> None:
        """A handler thread: run work as it comes, until shutdown sends None."""
        while (item := self._work.get()) is not None:
            run, work = item
            run._run(work)
            del run, work, item  # nothing of a finished run outlives it here
            with self._lock:
                self._idle += 1

    def _track(self, future: HandlerRun[Any] | Future[Any]) -> None:
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)


class _Timers:
    """Work due later, in one heap, handed to ``fire`` by one daemon thread when due.

    One thread for all of it: a burst of slow conversations schedules hundreds of late
    deliveries, and a timer thread each would cost a native stack each.
    """

    def __init__(self, fire: Callable[[Work], None]) -> None:
        self._fire = fire
        self._due: list[tuple[float, int, Work, bool]] = []  # due, order, work, recurring
        self._order = itertools.count()  # equal times keep their order; work never compares
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, delay: float, work: Work, *, recurring: bool = False) -> bool:
        """Schedule ``work``; False once closed. The thread starts on first use, inside the
        worker process (one started before gunicorn forks would not exist in the workers).

        :param recurring: a round of periodic work, which :meth:`close` drops.
        """
        with self._cond:
            if self._closed:
                return False
            due = time.monotonic() + delay
            heapq.heappush(self._due, (due, next(self._order), work, recurring))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wx-later", daemon=True)
                self._thread.start()
            self._cond.notify()
        return True

    def close(self) -> list[Work]:
        """Stop firing; return the work not yet fired, soonest first (periodic work left out)."""
        with self._cond:
            self._closed = True
            due, self._due = sorted(self._due), []
            self._cond.notify()
        return [work for _, _, work, recurring in due if not recurring]

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                work = heapq.heappop(self._due)[2]
                # Handed over under the lock, so that close() returns only once work already
                # taken is in the background, where shutdown waits for it.
                self._fire(work)
