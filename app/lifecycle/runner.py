"""Where handlers and the service's own background work run.

Handlers run on native threads, never on the thread or greenlet answering WeChat: a handler that
sleeps, hangs, calls a slow LLM or burns CPU keeps its thread and nothing else, so other pushes
are answered meanwhile and every attempt leaves on time (the interpreter switches threads every
few milliseconds, so even a CPU-bound handler cannot starve the answers).

Under a gevent worker (``gunicorn.conf.py``'s ``GeventWorker``, its default) every
request is a greenlet, so thousands of attempts can wait for their handlers at the cost of a few
kilobytes each. The handlers still go to a standard ``ThreadPoolExecutor`` of native threads;
:meth:`HandlerPool.wait` lets the waiting greenlet yield, woken by the handler's thread through
a gevent ``AsyncResult`` (which may be set from any thread). That hop costs about 25 µs of CPU
where gevent's own thread pool, written in Python, costs 120 µs.

The service's own work that may block (late delivery, the typing indicator, recording a result
nobody waited for) runs on a few native threads of its own, so it never holds up the greenlets
answering WeChat, and can use the same locks handlers use.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from gevent import monkey
from gevent.event import AsyncResult

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


class HandlerPool:
    """Native threads for handlers, plus background work and timers for the service itself.

    :param threads: the most handlers that may run at once in this process; more wait for a
        free thread. Threads are started on demand.
    """

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._handlers: ThreadPoolExecutor | None = None
        self._background: ThreadPoolExecutor | None = None
        self._timers = _Timers(self.background)
        # What shutdown waits for. A plain set, whose add and discard are atomic: no lock on
        # the path of every push.
        self._pending: set[Future[Any]] = set()
        self._lock = threading.Lock()

    def run(self, work: Callable[[], _T]) -> Future[_T]:
        """Start ``work`` (a handler) on a native thread; :meth:`wait` for its result.

        Callbacks added to the future run on the handler's thread as it finishes: hand anything
        that does I/O to :meth:`background`.
        """
        future = self._executor().submit(work)
        self._track(future)
        return future

    @staticmethod
    def wait(future: Future[_T], timeout: float) -> _T:
        """The result of ``future``, waiting at most ``timeout`` seconds.

        Under gevent the calling greenlet yields meanwhile, so other requests go on.

        :raises TimeoutError: (``concurrent.futures``') it was not done in time.
        """
        if future.done() or not cooperative():
            return future.result(timeout=timeout)
        done: AsyncResult = AsyncResult()
        future.add_done_callback(done.set)
        if done.wait(timeout) is None:
            raise FutureTimeout
        return future.result()

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

    def shutdown(self) -> None:
        """Finish everything now: due-later work runs at once, running handlers complete.

        Late work is run rather than dropped because it delivers replies users are owed.
        """
        for work in self._timers.close():
            self.background(work)
        while self._pending:
            for future in list(self._pending):
                try:
                    future.result()
                except Exception:  # its owner logged it; shutdown only waits
                    pass
        for executor in (self._handlers, self._background):
            if executor is not None:
                executor.shutdown(wait=True)

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._handlers is None:
                _warn_if_threading_patched()
                self._handlers = ThreadPoolExecutor(self._threads, thread_name_prefix="wx-handler")
            return self._handlers

    def _track(self, future: Future[Any]) -> None:
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)


class _Timers:
    """Work due later, in one heap, handed to ``fire`` by one daemon thread when due.

    One thread for all of it: a burst of slow conversations schedules hundreds of late
    deliveries, and a timer thread each would cost a native stack each.
    """

    def __init__(self, fire: Callable[[Work], None]) -> None:
        self._fire = fire
        self._due: list[tuple[float, int, Work]] = []
        self._order = itertools.count()  # equal times keep their order; work never compares
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, delay: float, work: Work) -> bool:
        """Schedule ``work``; False once closed. The thread starts on first use, inside the
        worker process (one started before gunicorn forks would not exist in the workers)."""
        with self._cond:
            if self._closed:
                return False
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), work))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="wx-later", daemon=True)
                self._thread.start()
            self._cond.notify()
        return True

    def close(self) -> list[Work]:
        """Stop firing; return the work not yet fired, soonest first."""
        with self._cond:
            self._closed = True
            due, self._due = sorted(self._due), []
            self._cond.notify()
        return [work for _, _, work in due]

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closed and (not self._due or self._due[0][0] > time.monotonic()):
                    wait = self._due[0][0] - time.monotonic() if self._due else None
                    self._cond.wait(wait)
                if self._closed:
                    return
                _, _, work = heapq.heappop(self._due)
                # Handed over under the lock, so that close() returns only once work already
                # taken is in the background, where shutdown waits for it.
                self._fire(work)
