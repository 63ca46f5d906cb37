"""A handler's run, and how a greenlet or a native thread waits for one to finish.

Every push a handler takes crosses to a handler thread and back (:mod:`.runner`), so the crossing
is kept lean: a finished run wakes the greenlets waiting for it through one gevent async watcher
per hub, which also gathers the runs that finish between two turns of the loop into one wake-up.
That costs about 15 µs of CPU a push, where a standard ``ThreadPoolExecutor`` with a gevent
``AsyncResult`` per wait cost 75 µs (its ``Future`` alone, with a ``Condition`` each, costs 20 µs)
and gevent's own thread pool, written in Python, 120 µs.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import gevent
from gevent.hub import Waiter

from ..threads import cooperative

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


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

    @classmethod
    def finished(cls, value: _T) -> HandlerRun[_T]:
        """A run that is over before it began: ``value`` is its result."""
        run: HandlerRun[_T] = cls()
        run._value, run._done = value, True
        return run

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


def wait_for(run: HandlerRun[Any], timeout: float) -> bool:
    """Wait until ``run`` finishes or ``timeout`` seconds pass; whether it finished.

    A greenlet yields meanwhile, so the other requests of its worker go on; a native thread
    blocks.
    """
    if run.done():
        return True
    woke = _wait_cooperatively(run, timeout) if cooperative() else None
    return _wait_natively(run, timeout) if woke is None else woke


#: Each native thread's :class:`_Wakeups`, made for its hub on first use.
_wakeups = threading.local()


def _wait_cooperatively(run: HandlerRun[Any], timeout: float) -> bool | None:
    """Yield this greenlet until ``run`` finishes or ``timeout`` passes; whether it did.

    None when the calling thread has no gevent loop running (a native thread of a patched
    process), which must wait natively.
    """
    hub = gevent.get_hub()
    if gevent.getcurrent() is hub:
        return None
    wakeups: _Wakeups | None = getattr(_wakeups, "here", None)
    if wakeups is None:
        wakeups = _wakeups.here = _Wakeups()
    waiter = Waiter(hub)
    run.add_done_callback(lambda _: wakeups.wake(waiter))
    timer = hub.loop.timer(timeout)
    timer.start(waiter.switch, _TIMED_OUT)
    try:
        return waiter.get() is not _TIMED_OUT or run.done()
    finally:
        timer.close()
