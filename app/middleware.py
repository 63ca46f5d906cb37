"""Middleware: code that runs around every handler, plain or ``async def``.

A middleware is a function of ``(message, call_next)`` registered with
:meth:`app.router.Router.middleware`. ``call_next()`` runs the rest of the chain (the middleware
registered after it, then the handler) and returns what the handler returned: None, a ``str``
or a reply. The middleware returns that, or something else in its place; one that never calls
``call_next`` answers by itself and the handler does not run. Middleware runs in registration
order, the first registered outermost, for every push, whether or not a handler matches it
(``call_next()`` then returns None).

``async def`` middleware gets a ``call_next`` to await. Plain and async layers mix freely
except in one arrangement: a plain middleware cannot wait for async code while an async
middleware outside it is itself waiting (one thread, one running loop); it fails with a
message saying to make it ``async def``.

Whoever raises is named: the service logs the first layer whose exception left it (the handler,
or a middleware that raised on its own account) and answers "success", as for any handler.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, cast

from .loops import Loops
from .router import Middleware, Route
from .wechat.messages import Message


class Chain:
    """One push's way through the middleware to its handler.

    :param route: the handler chosen for the push, or None when none matched.
    """

    def __init__(
        self,
        middleware: Sequence[Middleware],
        route: Route | None,
        message: Message,
        loops: Loops,
    ) -> None:
        self._middleware = middleware
        self._route = route
        self._message = message
        self._loops = loops
        self._error: BaseException | None = None
        #: ``module.qualname`` of the handler; "" when none matched.
        self.handler = "" if route is None else route.name
        #: ``handler <name>`` or ``middleware <name>``: where the exception :meth:`run` raised
        #: came from.
        self.culprit = ""

    def run(self) -> object:
        """Run the chain and return the outermost layer's value; exceptions propagate."""
        return self._plain(0)

    @property
    def _handler_name(self) -> str:
        return f"handler {self.handler}"

    def _plain(self, index: int) -> object:
        """Run layer ``index`` and those inside it, called from plain code."""
        if index == len(self._middleware):
            value = self._blamed(self._handler_name, self._call_handler)
            if not inspect.isawaitable(value):
                return value
            waiting = self._waiting(index, value, "an async handler")
            return self._blamed(self._handler_name, lambda: self._loops.run(waiting))
        layer = self._middleware[index]
        name = f"middleware {layer_name(layer)}"
        if is_async(layer):
            waiting = self._waiting(index, self._async(index), f"async {name}")
            return self._blamed(name, lambda: self._loops.run(waiting))
        return self._blamed(name, lambda: layer(self._message, self._once(index, self._plain)))

    async def _async(self, index: int) -> object:
        """Run layer ``index`` and those inside it, awaited by async code."""
        if index == len(self._middleware):
            value = self._blamed(self._handler_name, self._call_handler)
            if inspect.isawaitable(value):
                return await self._blamed_await(self._handler_name, value)
            return value
        layer = self._middleware[index]
        name = f"middleware {layer_name(layer)}"
        if not is_async(layer):
            return self._blamed(name, lambda: layer(self._message, self._once(index, self._plain)))
        inner = self._once(index, self._async)

        async def call_next() -> object:
            return await inner()

        started = self._blamed(name, lambda: layer(self._message, call_next))
        return await self._blamed_await(name, cast(Awaitable[object], started))

    def _call_handler(self) -> object:
        return None if self._route is None else self._route()

    def _waiting(
        self, index: int, awaitable: Awaitable[object], what: str
    ) -> Coroutine[Any, Any, object]:
        """A coroutine awaiting ``awaitable``, to run on this thread's loop.

        :raises RuntimeError: the loop is already running: a plain middleware (the caller of
            layer ``index``) sits between async middleware and ``what``.
        """
        if index > 0 and _loop_running():
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            caller = layer_name(self._middleware[index - 1])
            raise RuntimeError(
                f"middleware {caller} is a plain function inside async middleware and around"
                f" {what}: it cannot wait for it; make it async def and await call_next()"
            )
        return _awaited(awaitable)

    def _once(self, index: int, run: Callable[[int], Any]) -> Callable[[], Any]:
        """``call_next`` for layer ``index``: runs the layers inside it, at most once."""
        called = False

        def call_next() -> Any:
            nonlocal called
            if called:
                raise RuntimeError(
                    f"middleware {layer_name(self._middleware[index])} called call_next twice;"
                    " the handler runs once per push"
                )
            called = True
            return run(index + 1)

        return call_next

    def _blamed(self, name: str, call: Callable[[], object]) -> object:
        try:
            return call()
        except Exception as e:
            self._blame(e, name)
            raise

    async def _blamed_await(self, name: str, awaitable: Awaitable[object]) -> object:
        try:
            return await awaitable
        except Exception as e:
            self._blame(e, name)
            raise

    def _blame(self, error: BaseException, name: str) -> None:
        """The innermost layer an exception leaves is its author, unless an outer layer raises
        an exception of its own instead."""
        if error is not self._error:
            self._error, self.culprit = error, name


def is_async(func: Callable[..., Any]) -> bool:
    """Whether calling ``func`` makes a coroutine: ``async def``, also as a callable object."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None)  # noqa: B004 (a method, not a callable() check)
    )


def layer_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a middleware, for log lines."""
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(qualname, str):
        return repr(func)
    module = getattr(func, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
