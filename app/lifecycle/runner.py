"""Where handlers and the service's own background work run.

Handlers run on native threads, never on the thread or greenlet answering WeChat: a handler that
sleeps, hangs, calls a slow LLM or burns CPU keeps its thread and nothing else, so other pushes are
answered meanwhile and every attempt leaves on time (the interpreter switches threads every few
milliseconds, so even a CPU-bound handler cannot starve the answers).

Under a gevent worker (``gunicorn.conf.py``'s ``GeventWorker``, its default) every request is a
greenlet, so thousands of attempts can wait for their handlers at the cost of a few kilobytes each.
Every push a handler takes crosses to a handler thread and back, so the crossing is kept lean: a
handler thread takes work from a C ``SimpleQueue``, and waiting for its run is :mod:`.runs`'s.

The service's own work that may block (late delivery, the typing indicator, recording a result
nobody waited for) runs on a few native threads of its own, so it never holds up the greenlets
answering WeChat, and can use the same locks handlers use.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from gevent import monkey

from .clock import SYSTEM_CLOCK, Clock
from .runs import HandlerRun

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


class HandlerPool:
    """Native threads for handlers, plus background work and timers for the service itself.

    :param threads: the most handlers that may run at once in this process; more wait for a
        free thread. Threads are started on demand.
    :param clock: what waits and work due later are timed by (tests pass a manual one).
    """

    def __init__(self, threads: int, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._size = threads
        self._clock = clock
        self._work: queue.SimpleQueue[tuple[HandlerRun[Any], Callable[[], Any]] | None]
        self._work = queue.SimpleQueue()
        self._handlers: list[threading.Thread] = []
        #: Handler threads free for the next run (an over-count once all were busy at once,
        #: when no more may start anyway).
        self._idle = 0
        self._background: ThreadPoolExecutor | None = None
        self._timers = _Timers(self.background, clock)
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
        """The result of ``run``, waiting at most ``timeout`` seconds of the pool's clock.

        Under gevent the calling greenlet yields meanwhile, so other requests go on.

        :raises TimeoutError: (``concurrent.futures``') it was not done in time.
        """
        if not run.done() and not self._clock.wait(run, timeout):
            raise FutureTimeout
        return run.result()

    def idle(self) -> bool:
        """Whether no handler runs and no background work is queued or running (work due
        later aside): what a test waits for before it looks at what a run left behind."""
        return not self._pending

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

    def __init__(self, fire: Callable[[Work], None], clock: Clock) -> None:
        self._fire = fire
        self._clock = clock
        self._due: list[tuple[float, int, Work, bool]] = []  # due, order, work, recurring
        self._order = itertools.count()  # equal times keep their order; work never compares
        self._lock = threading.Lock()
        #: Set when the heap changes or the timers close: the thread looks again.
        self._changed = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, delay: float, work: Work, *, recurring: bool = False) -> bool:
        """Schedule ``work``; False once closed. The thread starts on first use, inside the
        worker process (one started before gunicorn forks would not exist in the workers).

        :param recurring: a round of periodic work, which :meth:`close` drops.
        """
        with self._lock:
            if self._closed:
                return False
            due = self._clock.monotonic() + delay
            heapq.heappush(self._due, (due, next(self._order), work, recurring))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wx-later", daemon=True)
                self._thread.start()
        self._changed.set()
        return True

    def close(self) -> list[Work]:
        """Stop firing; return the work not yet fired, soonest first (periodic work left out)."""
        with self._lock:
            self._closed = True
            due, self._due = sorted(self._due), []
        self._changed.set()
        return [work for _, _, work, recurring in due if not recurring]

    def _run(self) -> None:
        while True:
            # Cleared before the heap is read, so a change made after the read still wakes
            # the wait below.
            self._changed.clear()
            with self._lock:
                if self._closed:
                    return
                now = self._clock.monotonic()
                if self._due and self._due[0][0] <= now:
                    # Handed over under the lock, so that close() returns only once work
                    # already taken is in the background, where shutdown waits for it.
                    self._fire(heapq.heappop(self._due)[2])
                    continue
                wait = self._due[0][0] - now if self._due else None
            self._clock.wait_event(self._changed, wait)
