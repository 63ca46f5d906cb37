"""The clock the life of a push reads and waits on: the system's, or a test's.

Deadlines, the age of a claim, the retry window and work due later are all times. Reading and
waiting on them through one object lets a test pass a :class:`ManualClock`, which moves only
when told: three attempts at an 8-second handler, a lapse, late delivery, are then played in
milliseconds and in a fixed order, with no sleeping and no race against a busy machine.

The store's expiry times stay the store's own (wall-clock seconds, shared by processes), and
so does the cadence of renewing leases and of the outbox's heartbeat, which only have to beat
those expiry times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from .runs import HandlerRun, wait_for


class Clock:
    """The system's time: ``time.monotonic`` and ``time.time``, and waits that last as long
    as they say (cooperative ones under gevent, where ``time.sleep`` is patched)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: deadlines and intervals."""
        return time.monotonic()

    def time(self) -> float:
        """Unix time: what is compared with WeChat's timestamps and written to the store."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        """Pause the calling thread or greenlet."""
        time.sleep(seconds)

    def wait(self, run: HandlerRun[Any], timeout: float) -> bool:
        """Wait until ``run`` finishes or ``timeout`` passes; whether it finished."""
        return wait_for(run, timeout)

    def wait_event(self, event: threading.Event, timeout: float | None) -> bool:
        """Block this native thread until ``event`` is set or ``timeout`` passes (None: no
        limit); whether it is set."""
        return event.wait(timeout)


#: The clock everything uses unless a test passes another.
SYSTEM_CLOCK = Clock()


class ManualClock(Clock):
    """A clock for tests that moves only when :meth:`advance` says so.

    Threads that sleep or wait on it block (in real time) until the clock reaches their time
    or what they wait for happens, whichever comes first. ``advance`` moves the time at once:
    every waiter due by then wakes together, so to have one thing happen before another,
    advance to the first, let it happen, then advance again. :meth:`until_waiting` tells when
    the threads of a test (attempts waiting for a handler, handlers sleeping) have reached
    their waits.

    Its Unix time starts at the system's, so signatures and WeChat's timestamps still check.

    :param patience: real seconds a sleep or a wait for a run lasts with the clock not
        reaching it, after which it fails with RuntimeError rather than hang a test that forgot
        to advance.
    """

    #: Real seconds between the looks a waiting thread takes at the clock and what it awaits.
    POLL = 0.002

    def __init__(self, *, patience: float = 30.0) -> None:
        self._patience = patience
        self._start = time.monotonic()
        self._epoch = time.time()
        self._elapsed = 0.0
        self._waiting = 0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self._start + self._elapsed

    def time(self) -> float:
        return self._epoch + self._elapsed

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward; waits due by then end."""
        if seconds < 0:
            raise ValueError(f"a clock only moves forward (asked {seconds})")
        with self._lock:
            self._elapsed += seconds

    def until_waiting(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Return once at least ``count`` threads sleep or wait for a run on the clock (the
        service's own timer thread is not counted).

        :raises TimeoutError: they were not within ``timeout`` real seconds.
        """
        limit = time.monotonic() + timeout
        while self._waiting < count:
            if time.monotonic() > limit:
                raise TimeoutError(f"{self._waiting} threads wait on the clock, not {count}")
            time.sleep(self.POLL)

    def sleep(self, seconds: float) -> None:
        self._counted(seconds, lambda: False)

    def wait(self, run: HandlerRun[Any], timeout: float) -> bool:
        return self._counted(timeout, run.done)

    def wait_event(self, event: threading.Event, timeout: float | None) -> bool:
        due = None if timeout is None else self._elapsed + timeout
        return self._poll(event.is_set, due, give_up_at=None)

    def _counted(self, seconds: float, done: Callable[[], bool]) -> bool:
        """Wait until ``done()`` or the clock has moved ``seconds`` on, counted by
        :meth:`until_waiting` and given up after ``patience``; whether ``done()``."""
        with self._lock:
            self._waiting += 1
        try:
            give_up_at = time.monotonic() + self._patience
            return self._poll(done, self._elapsed + seconds, give_up_at=give_up_at)
        finally:
            with self._lock:
                self._waiting -= 1

    def _poll(
        self, done: Callable[[], bool], due: float | None, *, give_up_at: float | None
    ) -> bool:
        """Look at ``done()`` and the clock every :data:`POLL` real seconds until one of them
        says so (``due`` None: the clock never does); whether ``done()``.

        :raises RuntimeError: real time passed ``give_up_at`` first.
        """
        while not done():
            if due is not None and self._elapsed >= due:
                return False
            if give_up_at is not None and time.monotonic() > give_up_at:
                raise RuntimeError(
                    f"ManualClock: a wait saw the clock stand still for {self._patience} real"
                    " seconds; advance() it"
                )
            time.sleep(self.POLL)
        return True
