"""Where handlers and the service's own background work run.

Handlers run on native threads, never on the thread or greenlet answering WeChat: a handler that
sleeps, hangs, calls a slow LLM or burns CPU keeps its thread and nothing else, so other pushes
are answered meanwhile and every attempt leaves on time (the interpreter switches threads every
few milliseconds, so even a CPU-bound handler cannot starve the answers).

Under gunicorn's gevent worker (the default, ``gunicorn.conf.py``) every request is a greenlet,
so thousands of attempts can wait for their handlers at the cost of a few kilobytes each; the
handlers go to gevent's pool of native threads, whose futures are waited on cooperatively.
Anywhere else (the gthread worker, Flask's test client) the pool is a standard
``ThreadPoolExecutor``. The service sees one interface either way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import gevent
from gevent import monkey
from gevent.threadpool import ThreadPoolExecutor as NativeThreadPoolExecutor

_T = TypeVar("_T")


def _gevent_patched() -> bool:
    """Whether gevent monkey-patched threading in this process (gunicorn's gevent worker)."""
    return bool(monkey.is_module_patched("threading"))


class HandlerPool:
    """Native threads for handlers, plus background work and timers for the service itself.

    :param threads: the most handlers that may run at once in this process; more wait for a
        free thread. Threads are started on demand.
    """

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._handlers: ThreadPoolExecutor | None = None
        self._background: ThreadPoolExecutor | None = None
        # What shutdown waits for. Plain sets: their add and discard are atomic, and the
        # callbacks that discard may run in gevent's hub, where no lock may be waited on.
        self._pending: set[Future[Any]] = set()
        self._greenlets: set[gevent.Greenlet] = set()
        self._timers: dict[threading.Timer, Callable[[], object]] = {}
        self._closing = False
        self._lock = threading.Lock()

    def run(self, work: Callable[[], _T]) -> Future[_T]:
        """Start ``work`` (a handler) on a native thread; wait on the future as long as you may.

        Callbacks added to the future may run where no blocking call is allowed (gevent's hub):
        hand anything that does I/O to :meth:`background`.
        """
        future = self._executor().submit(work)
        self._track(future)
        return future

    def background(self, work: Callable[[], object]) -> None:
        """Run the service's own short work (late delivery, typing indicator) concurrently."""
        if _gevent_patched():
            greenlet = gevent.spawn(work)
            self._greenlets.add(greenlet)
            greenlet.link(self._greenlets.discard)
            return
        with self._lock:
            if self._background is None:
                self._background = ThreadPoolExecutor(4, thread_name_prefix="wx-service")
            executor = self._background
        self._track(executor.submit(work))

    def later(self, delay: float, work: Callable[[], object]) -> None:
        """Run ``work`` in the background after ``delay`` seconds (late delivery checks)."""

        def fire() -> None:
            with self._lock:  # shutdown() runs the work itself if it took the timer first
                due = self._timers.pop(timer, None) is not None
            if due:
                self.background(work)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            closing = self._closing
            if not closing:
                self._timers[timer] = work
                timer.start()
        if closing:  # asked during shutdown, by a handler finishing: no later left
            work()

    def shutdown(self) -> None:
        """Finish everything now: due-later work runs at once, running handlers complete.

        Late work is run rather than dropped because it delivers replies users are owed.
        """
        with self._lock:
            self._closing = True
            timers, self._timers = self._timers, {}
        for timer, work in timers.items():
            timer.cancel()
            self.background(work)
        while self._pending or self._greenlets:
            gevent.joinall(list(self._greenlets))
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
                if _gevent_patched():
                    self._handlers = NativeThreadPoolExecutor(self._threads)
                else:
                    self._handlers = ThreadPoolExecutor(
                        self._threads, thread_name_prefix="wx-handler"
                    )
            return self._handlers

    def _track(self, future: Future[Any]) -> None:
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
