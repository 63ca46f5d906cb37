"""Handlers run on a pool of threads of their own, never on the thread answering WeChat.

The request thread only waits for a handler, and only until the deadline; a handler that sleeps,
hangs or calls a slow LLM keeps its pool thread and nothing else, so other pushes are answered
meanwhile and the request always leaves on time. The pool is per process (gunicorn workers do not
share threads); the ledger is what processes share.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")


class HandlerPool:
    """A bounded pool for handler runs, plus timers for work due later."""

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wx-handler")
        self._timers: dict[threading.Timer, Callable[[], object]] = {}
        self._closing = False
        self._lock = threading.Lock()

    def submit(self, work: Callable[[], _T]) -> Future[_T]:
        """Start ``work`` on a pool thread; the caller waits on the future as long as it may."""
        return self._executor.submit(work)

    def later(self, delay: float, work: Callable[[], object]) -> None:
        """Run ``work`` on the pool after ``delay`` seconds (late delivery checks)."""

        def fire() -> None:
            with self._lock:  # shutdown() runs the work itself if it took the timer first
                if self._timers.pop(timer, None) is not None:
                    self._executor.submit(work)

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
            self._executor.submit(work)
        self._executor.shutdown(wait=True)
