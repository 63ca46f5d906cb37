"""Event loops for ``async def`` handlers and middleware: one per handler thread, reused.

Handlers run on native threads (:mod:`app.lifecycle.runner`), one push at a time per thread, so a
coroutine handler needs no loop shared with anyone: it runs to completion on its thread's own
loop, and the waiting attempt sees a finished future exactly as with a plain handler, which is
why WX_SLOW_STRATEGY behaves the same for both. The loop is kept for the thread's next handler
rather than made anew: a run costs 80 µs under gevent where ``asyncio.run`` costs 420 µs (a
coroutine that awaits once; 44 against 320 µs without gevent), and above all the loop keeps
what belongs to it, such as the connections of the handler's
:class:`~app.api.AsyncWeChatAPI`, for the next run.

Each run ends the way ``asyncio.run`` ends: tasks the coroutine left behind are cancelled, so
nothing of one push runs on into another's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .threads import cooperative

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


class Loops:
    """The event loops of one service's handler threads, and what lives on each of them."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        #: Every loop made, with what to close on it before it closes: a key per resource.
        self._loops: dict[asyncio.AbstractEventLoop, dict[str, tuple[Any, Closer]]] = {}
        self._closed = False

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        """Run ``coroutine`` to completion on this thread's loop and return its result.

        :raises RuntimeError: a loop is already running on this thread (a plain function called
            from a coroutine cannot wait for another coroutine).
        """
        if _running_loop() is not None:
            coroutine.close()
            raise RuntimeError(
                "a coroutine cannot be waited for by a plain function called from async code:"
                " make the function async def and await it"
            )
        loop = self._loop()
        try:
            return loop.run_until_complete(coroutine)
        finally:
            _cancel_leftovers(loop)
            self._local.executor = _renew_executor(loop, self._local.executor)

    def resource(self, name: str, make: Callable[[], _T], close: Closer) -> _T:
        """The object called ``name`` for the running loop, made on first use.

        For clients whose connections belong to one loop (:class:`~app.api.AsyncWeChatAPI`):
        each handler thread's loop gets its own, reused by every handler run on that thread and
        closed with ``close`` when the service closes.

        :raises RuntimeError: no loop of this service runs on this thread (a loop the handler
            made itself, with ``asyncio.run``, would close before the object).
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            owned = self._loops.get(loop)
            if owned is None:
                raise RuntimeError(
                    f"{name} belongs to the loop the service runs async handlers on; in a loop"
                    " of your own, make and close a client of your own"
                )
            if name not in owned:
                owned[name] = (make(), close)
            value: _T = owned[name][0]
            return value

    def close(self) -> None:
        """Close every loop and what lives on it; call once the handlers have finished.

        Under gevent (gunicorn's gevent worker, on its way out) a loop's sockets belong to the
        hub of the thread that ran it, which has ended: they can be neither closed from here nor
        collected, so they are kept as they are for the process's exit to close.
        """
        with self._lock:
            self._closed = True
            if cooperative():
                return
            loops, self._loops = self._loops, {}
        for loop, owned in loops.items():
            for name, (value, close) in owned.items():
                try:
                    loop.run_until_complete(close(value))
                except Exception as e:  # closing: report and go on with the others
                    logger.warning("%s not closed cleanly: %s", name, e)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _loop(self) -> asyncio.AbstractEventLoop:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is not None and not loop.is_closed():
            return loop
        loop = asyncio.new_event_loop()
        with self._lock:
            if self._closed:
                loop.close()
                raise RuntimeError("the service is closed; no handler may start")
            self._loops[loop] = {}
        self._local.loop = loop
        self._local.executor = _renew_executor(loop, None)
        return loop


#: Closes one loop-bound resource, on its loop.
Closer = Callable[[Any], Awaitable[object]]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Threads(ThreadPoolExecutor):
    """A loop's default executor (``asyncio.to_thread``), replaced after a run that used it.

    Its threads are stopped at the end of that run, as ``asyncio.run`` stops them, so that none
    outlives the run: under gevent they belong to the handler thread's hub, and one left
    waiting makes the worker's exit fail. They are cheap to start again.
    """

    used = False

    def submit(self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any) -> Future[_T]:
        self.used = True
        return super().submit(fn, *args, **kwargs)


def _renew_executor(loop: asyncio.AbstractEventLoop, executor: _Threads | None) -> _Threads:
    """Stop ``executor`` if the run used it, and give ``loop`` a fresh one; return it."""
    if executor is not None and not executor.used:
        return executor
    if executor is not None:
        executor.shutdown(wait=True)
    fresh = _Threads(thread_name_prefix="wx-handler-async")
    loop.set_default_executor(fresh)
    return fresh


def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks a run left behind and let them finish, as ``asyncio.run`` does."""
    leftovers = asyncio.all_tasks(loop)
    if not leftovers:
        return
    for task in leftovers:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
