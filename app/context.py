"""``ctx``: what a handler and its middleware can reach besides the message.

::

    from app import Router, ctx

    router = Router()


    @router.text
    def count(message):
        seen = ctx.session.get("seen", 0) + 1
        ctx.session["seen"] = seen  # saved when the handler returns
        ctx.log.info("message %d of this user", seen)  # names the push, never the OpenID
        return f"That is your message number {seen}."

``ctx`` stands for the context of the push being handled where it is used, as Flask's
``request`` does for a request: it is kept in a context variable, so each handler thread and
each coroutine sees its own push. It offers:

* ``ctx.message``, and ``ctx.push``: how the push came (``mode``, ``body_format``) and its
  plaintext ``fields`` as received;
* ``ctx.settings``: the account's settings;
* ``ctx.session``: the user's session (:mod:`app.sessions`), read only when touched;
* ``ctx.log``: a logger whose lines name the push by the user's pseudonym;
* ``ctx.api``: the blocking API client (:class:`~app.api.WeChatAPI`); in ``async def`` code
  ``ctx.async_api``, an :class:`~app.api.AsyncWeChatAPI` of the handler's loop. Both need
  WX_APPSECRET and share the service's access_token;
* ``ctx.reachable(openid=None)``: whether a customer-service message can reach the user (or
  another user) now (:mod:`app.window`);
* ``ctx.store``: the store every worker and host shares, for state of your own beyond the
  session (a rate limit, a cache); keep your keys under a prefix such as ``app:``;
* ``ctx.handler``: the name of the handler chosen for the push, "" if none, for middleware.

A handler that touches none of them costs nothing more than one that cannot: nothing is read
from the store until it is asked for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, MutableMapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from typing import Any, cast

from config import Settings

from .api import AsyncWeChatAPI, WeChatAPI
from .clients import Clients
from .loops import Loops
from .sessions import Session, Sessions
from .store import Store
from .wechat.envelope import Push
from .wechat.messages import Message
from .window import Contact, Reach, Windows

#: Where handlers' own log lines go: below the package's logger, so they share its output.
handler_logger = logging.getLogger("app.handler")

_current: ContextVar[Context] = ContextVar("wx_handler_context")


class PushLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes each line with the push it is about: ``msg:user#5f1c0a9e3b:1795…``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"{self.extra['push'] if self.extra else ''} {msg}", kwargs


class Context:
    """One push's context, made by :class:`Contexts` for its handler run; a ``with`` block
    makes it current, inside the app context."""

    def __init__(
        self,
        contexts: Contexts,
        push: Push,
        message: Message,
        contact: Contact | None,
        handler: str,
    ) -> None:
        self._contexts = contexts
        self._contact = contact
        self._session: Session | None = None
        self._log: PushLogger | None = None
        self._entered: list[tuple[Token[Context], AbstractContextManager[object]]] = []
        #: The push being handled, as parsed.
        self.message = message
        #: How it came: ``mode``, ``body_format`` and the plaintext ``fields``.
        self.push = push
        #: The account's settings.
        self.settings: Settings = contexts.settings
        #: ``module.qualname`` of the handler chosen for the push; "" when none matched.
        self.handler = handler

    def __enter__(self) -> Context:
        app_context = self._contexts.app_context()
        app_context.__enter__()
        self._entered.append((_current.set(self), app_context))
        return self

    def __exit__(self, *exc_info: Any) -> None:
        token, app_context = self._entered.pop()
        _current.reset(token)
        app_context.__exit__(*exc_info)

    @property
    def log(self) -> PushLogger:
        """Log lines about this push, naming the user by pseudonym only."""
        if self._log is None:
            self._log = PushLogger(handler_logger, {"push": self.message.push_key.logged})
        return self._log

    @property
    def session(self) -> Session:
        """The user's session: a dict of JSON values, saved when the handler returns."""
        if self._session is None:
            message = self.message
            self._session = self._contexts.sessions.open(message.from_user_name, message.push_key)
        return self._session

    @property
    def store(self) -> Store:
        """The shared store (get, set, add, take, delete, lock); your keys under ``app:``."""
        return self._contexts.store

    @property
    def api(self) -> WeChatAPI:
        """The blocking API client. :raises RuntimeError: there is no WX_APPSECRET."""
        api = self._contexts.clients.api
        if api is None:
            raise RuntimeError(
                "ctx.api needs WX_APPSECRET (and WX_APPID): set them to call WeChat from handlers"
            )
        return api

    @property
    def async_api(self) -> AsyncWeChatAPI:
        """The async API client of this handler's loop, for ``async def`` handlers.

        :raises RuntimeError: no WX_APPSECRET, or not in async code the service runs.
        """
        return self._contexts.clients.async_api()

    def reachable(self, openid: str | None = None) -> Reach:
        """Whether a customer-service message to ``openid`` (default: this push's user) would
        be taken now; the answer is true or false, with ``left``, ``until`` and ``reason``.

        It counts what the service sent (late replies, the rest of long texts), not what
        handlers sent themselves; a refusal then still comes as ``TooManyReplies``. For another
        user it reads the store, and knows of their messages but not of their clicks.
        """
        if self._contexts.clients.api is None:
            return Reach(False, reason="no WX_APPSECRET: the customer-service API is not set up")
        sender = self.message.from_user_name
        if openid is not None and openid != sender:
            return self._contexts.windows.read(openid).reach(time.time())
        contact = self._contact
        if contact is None:  # a takeover: the claim did not read the record
            contact = self._contexts.windows.read(sender)
            seen = Contact.opened_by(self.message)
            if seen is not None:
                contact.note(seen)
            self._contact = contact
        return contact.reach(time.time())


class Contexts:
    """Makes the context of each handler run of one account, and enters it.

    :param app_context: the Flask app's ``app_context``: handlers run inside it, so
        ``current_app`` works there as in a view.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        sessions: Sessions,
        windows: Windows,
        clients: Clients,
        loops: Loops,
        app_context: Callable[[], AbstractContextManager[object]],
    ) -> None:
        self.settings = settings
        self.store = store
        self.sessions = sessions
        self.windows = windows
        self.clients = clients
        self.loops = loops
        self.app_context = app_context

    def open(self, push: Push, message: Message, contact: Contact | None, handler: str) -> Context:
        """The context of a handler run of ``push``; enter it with ``with``."""
        return Context(self, push, message, contact, handler)

    def finish(self, context: Context, *, returned: bool) -> None:
        """Close the run: save the session if the handler ``returned`` (and changed it).

        :raises app.store.StoreError: the session could not be saved.
        """
        if context._session is not None:
            self.sessions.finish(context._session, save=returned)

    def close(self) -> None:
        """Close the clients and loops, once the handlers have finished."""
        self.loops.close()
        self.clients.close()


def current() -> Context:
    """The context of the push being handled here.

    :raises RuntimeError: no handler or middleware is running here.
    """
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "ctx is used outside a handler: it exists while a handler or middleware runs"
        ) from None


class _Proxy:
    """Stands for :func:`current`'s context wherever it is used."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(current(), name)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"ctx.{name} cannot be set; use ctx.session to keep state")

    def __repr__(self) -> str:
        try:
            return f"<ctx of {current().message.push_key}>"
        except RuntimeError:
            return "<ctx outside a handler>"


#: The context of the push being handled: ``from app import ctx``.
ctx = cast(Context, _Proxy())
