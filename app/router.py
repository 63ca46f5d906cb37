"""The handler registration API that users of the service write against.

A handler is a plain function of the message (regex handlers also get the match) that returns
what :func:`app.wechat.replies.make_reply` accepts: None or "" for "success", a ``str`` for a
text reply, or a reply object. Users build a :class:`Router` in their own module and name it
with ``WX_HANDLERS``; :func:`load_router` finds it the way ``flask --app`` finds an app.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .wechat.events import ClickEvent, SubscribeEvent
from .wechat.messages import (
    Event,
    ImageMessage,
    LinkMessage,
    LocationMessage,
    Message,
    TextMessage,
    VideoMessage,
    VoiceMessage,
)

#: What the router stores: a handler of ``(message)`` or, for patterns, ``(message, match)``.
Handler = Callable[..., object]
_K = TypeVar("_K")
_H = TypeVar("_H", bound=Callable[[Message], object])
#: A handler of one event or message type, annotated with that type's class (``ScanEvent`` for
#: ``SCAN``...): which class arrives depends on a string, so the checker cannot know it.
_TypedH = TypeVar("_TypedH", bound=Callable[[Any], object])
_TextH = TypeVar("_TextH", bound=Callable[[TextMessage], object])
_ImageH = TypeVar("_ImageH", bound=Callable[[ImageMessage], object])
_VoiceH = TypeVar("_VoiceH", bound=Callable[[VoiceMessage], object])
_VideoH = TypeVar("_VideoH", bound=Callable[[VideoMessage], object])
_LocationH = TypeVar("_LocationH", bound=Callable[[LocationMessage], object])
_LinkH = TypeVar("_LinkH", bound=Callable[[LinkMessage], object])
_RegexH = TypeVar("_RegexH", bound=Callable[[TextMessage, re.Match[str]], object])
_SubscribeH = TypeVar("_SubscribeH", bound=Callable[[SubscribeEvent], object])
_ClickH = TypeVar("_ClickH", bound=Callable[[ClickEvent], object])


class HandlerLoadError(Exception):
    """``WX_HANDLERS`` does not name an importable module holding a :class:`Router`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: What went wrong and how to fix it.
        self.message = message

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class Route:
    """The one handler chosen for a message, bound to its arguments and ready to call.

    It lets the caller run the handler where it decides (and catch its exceptions there) while
    naming the handler in its log line.
    """

    #: The user's function, as registered.
    handler: Handler
    #: What it is called with: ``(message,)`` or ``(message, match)``.
    args: tuple[object, ...]

    def __call__(self) -> object:
        return self.handler(*self.args)

    @property
    def name(self) -> str:
        """``module.qualname`` of the handler, for log lines."""
        return _qualified_name(self.handler)


def _qualified_name(func: Handler) -> str:
    qualname = getattr(func, "__qualname__", None)
    if not isinstance(qualname, str):
        return repr(func)
    module = getattr(func, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) else qualname


class Router:
    """Handlers by what they answer; each push goes to exactly one of them.

    Dispatch order, first match wins:

    1. ``keyword``: a text message whose content, stripped of surrounding whitespace, equals
       the keyword exactly (case matters);
    2. ``regex``: a text message whose content ``re.search`` matches, patterns tried in
       registration order; the handler gets ``(message, match)``;
    3. ``event`` with ``key``: the event name, compared case-insensitively, and the
       ``EventKey`` exactly (for a QR-code subscribe that is ``qrscene_<scene>``);
    4. ``event`` alone, case-insensitively;
    5. ``msg_type`` (``msg_type="event"`` takes every event left);
    6. the fallback.

    Registering a second handler for the same thing raises ``ValueError``, so a handler is
    never silently shadowed. Handlers are called by :meth:`dispatch` without protection: the
    service catches and logs their exceptions around the call of :meth:`resolve`'s route.
    """

    def __init__(self) -> None:
        self._keywords: dict[str, Handler] = {}
        #: In registration order, which is the order patterns are tried in.
        self._patterns: dict[re.Pattern[str], Handler] = {}
        self._event_keys: dict[tuple[str, str], Handler] = {}
        self._events: dict[str, Handler] = {}
        self._msg_types: dict[str, Handler] = {}
        self._fallback: Handler | None = None

    def add_handler(
        self,
        func: Handler,
        *,
        msg_type: str | None = None,
        event: str | None = None,
        key: str | None = None,
        keyword: str | None = None,
        pattern: str | re.Pattern[str] | None = None,
    ) -> None:
        """Register ``func`` for one kind of push; with no criterion, as the fallback.

        :param msg_type: a ``MsgType`` such as ``"text"`` (case-insensitive).
        :param event: an ``Event`` such as ``"CLICK"`` (case-insensitive).
        :param key: with ``event`` only: the exact ``EventKey``.
        :param keyword: the exact text content, after stripping surrounding whitespace.
        :param pattern: a regular expression searched in the text content; ``func`` then
            takes ``(message, match)``.
        :raises ValueError: several criteria at once, ``key`` without ``event``, an empty
            criterion, or something already handled.
        """
        criteria = {"msg_type": msg_type, "event": event, "keyword": keyword, "pattern": pattern}
        given = [name for name, value in criteria.items() if value is not None]
        if len(given) > 1:
            raise ValueError(f"give one of msg_type, event, keyword, pattern; got {given}")
        if given and criteria[given[0]] == "":
            raise ValueError(f"{given[0]} must not be empty; register a fallback to match all")
        if key is not None and event is None:
            raise ValueError("key matches an event's EventKey; give event as well")
        if keyword is not None:
            if keyword != keyword.strip():
                raise ValueError(
                    f"keyword {keyword!r} has surrounding whitespace; it never matches"
                )
            self._put(self._keywords, keyword, func, f"keyword {keyword!r}")
        elif pattern is not None:
            compiled = re.compile(pattern)
            self._put(self._patterns, compiled, func, f"pattern {compiled.pattern!r}")
        elif event is not None and key is not None:
            slot = (event.lower(), key)
            self._put(self._event_keys, slot, func, f"event {event!r} with key {key!r}")
        elif event is not None:
            self._put(self._events, event.lower(), func, f"event {event!r}")
        elif msg_type is not None:
            self._put(self._msg_types, msg_type.lower(), func, f"msg_type {msg_type!r}")
        elif self._fallback is not None:
            raise ValueError(f"the fallback is already {_qualified_name(self._fallback)}")
        else:
            self._fallback = func

    @staticmethod
    def _put(table: dict[_K, Handler], slot: _K, func: Handler, what: str) -> None:
        if slot in table:
            raise ValueError(f"{what} is already handled by {_qualified_name(table[slot])}")
        table[slot] = func

    # -- decorators: each registers through add_handler and returns the function unchanged --

    def message(self, msg_type: str) -> Callable[[_TypedH], _TypedH]:
        """Register a handler for a ``MsgType``, e.g. ``@router.message("shortvideo")``."""

        def register(func: _TypedH) -> _TypedH:
            self.add_handler(func, msg_type=msg_type)
            return func

        return register

    def text(self, func: _TextH) -> _TextH:
        """Register the handler of text messages no keyword or pattern took."""
        self.add_handler(func, msg_type="text")
        return func

    def image(self, func: _ImageH) -> _ImageH:
        """Register the handler of image messages."""
        self.add_handler(func, msg_type="image")
        return func

    def voice(self, func: _VoiceH) -> _VoiceH:
        """Register the handler of voice messages."""
        self.add_handler(func, msg_type="voice")
        return func

    def video(self, func: _VideoH) -> _VideoH:
        """Register the handler of video messages."""
        self.add_handler(func, msg_type="video")
        return func

    def location(self, func: _LocationH) -> _LocationH:
        """Register the handler of location messages."""
        self.add_handler(func, msg_type="location")
        return func

    def link(self, func: _LinkH) -> _LinkH:
        """Register the handler of link messages."""
        self.add_handler(func, msg_type="link")
        return func

    def event(self, event: str, *, key: str | None = None) -> Callable[[_TypedH], _TypedH]:
        """Register a handler for an event, e.g. ``@router.event("CLICK", key="MENU_HELP")``."""

        def register(func: _TypedH) -> _TypedH:
            self.add_handler(func, event=event, key=key)
            return func

        return register

    def subscribe(self, func: _SubscribeH) -> _SubscribeH:
        """Register the handler of ``subscribe`` events (follows)."""
        self.add_handler(func, event="subscribe")
        return func

    def click(self, key: str | None = None) -> Callable[[_ClickH], _ClickH]:
        """Register a handler for ``CLICK`` events, of one menu ``key`` or of all."""

        def register(func: _ClickH) -> _ClickH:
            self.add_handler(func, event="CLICK", key=key)
            return func

        return register

    def keyword(self, keyword: str) -> Callable[[_TextH], _TextH]:
        """Register a handler for a text message that is exactly ``keyword``."""

        def register(func: _TextH) -> _TextH:
            self.add_handler(func, keyword=keyword)
            return func

        return register

    def regex(self, pattern: str | re.Pattern[str]) -> Callable[[_RegexH], _RegexH]:
        """Register a handler for text messages ``pattern`` matches; it gets the match too."""

        def register(func: _RegexH) -> _RegexH:
            self.add_handler(func, pattern=pattern)
            return func

        return register

    def fallback(self, func: _H) -> _H:
        """Register the handler of everything no other handler takes."""
        self.add_handler(func)
        return func

    # -- dispatch ---------------------------------------------------------------------------

    def resolve(self, message: Message) -> Route | None:
        """Choose the handler for ``message`` in the documented order, without calling it.

        :return: the handler bound to its arguments, or None when no handler matches.
        """
        if isinstance(message, TextMessage):
            handler = self._keywords.get(message.content.strip())
            if handler is not None:
                return Route(handler, (message,))
            for pattern, handler in self._patterns.items():
                match = pattern.search(message.content)
                if match is not None:
                    return Route(handler, (message, match))
        if isinstance(message, Event):
            event = message.event.lower()
            handler = self._event_keys.get((event, message.event_key))
            if handler is None:
                handler = self._events.get(event)
            if handler is not None:
                return Route(handler, (message,))
        handler = self._msg_types.get(message.msg_type.lower(), self._fallback)
        return None if handler is None else Route(handler, (message,))

    def dispatch(self, message: Message) -> object:
        """Call the one handler for ``message`` and return what it returned.

        Exceptions from the handler propagate.

        :return: the handler's return value, or None when no handler matches.
        """
        route = self.resolve(message)
        return None if route is None else route()


def load_router(spec: str) -> Router:
    """Import the user's handlers: ``"module"`` (its ``router``) or ``"module:name"``.

    The working directory is importable, as with ``flask --app``: it goes first on
    ``sys.path`` unless it (or ``""``, which stands for it) is there already, so a
    ``myhandlers.py`` beside ``.env`` is found under gunicorn and ``flask run`` alike.
    Whatever goes wrong becomes one :class:`HandlerLoadError` that says what to fix and, for a
    fault in the code, in which file and line: the commands and ``wsgi.py`` print it as one
    line and stop, where a traceback per gunicorn worker would bury it. The original exception
    is chained for whoever wants its traceback.

    :raises HandlerLoadError: the spec is malformed, the module cannot be found, importing it
        raised (a syntax error, an ``ImportError`` of its own, any other exception), or the
        attribute is missing or not a Router.
    """
    module_name, colon, attr = spec.partition(":")
    attr = attr if colon else "router"
    dotted = module_name.split(".")
    if not all(part.isidentifier() for part in dotted) or not attr.isidentifier():
        raise HandlerLoadError(
            f"handlers {spec!r} must be 'module' or 'module:name', e.g. 'myhandlers:router'"
        )
    _put_cwd_on_path()
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        missing = isinstance(e, ModuleNotFoundError) and e.name is not None
        if missing and e.name in {".".join(dotted[:n]) for n in range(1, len(dotted) + 1)}:
            raise HandlerLoadError(
                f"Could not import {module_name!r}: no module named {e.name!r}. It must be"
                f" importable from the working directory ({os.getcwd()}) or PYTHONPATH."
            ) from e
        fix = (
            f"Install the package that provides {e.name!r} in the service's virtualenv,"
            " or fix the import."
            if missing
            else "Fix the import."
        )
        raise HandlerLoadError(_import_failed(module_name, e, fix)) from e
    except SyntaxError as e:
        where = f" at {e.filename}, line {e.lineno}" if e.filename else ""
        raise HandlerLoadError(
            f"Could not import {module_name!r}: fix the syntax error{where} ({e.msg})."
        ) from e
    except Exception as e:
        fix = "Fix the module: the service cannot start until importing it succeeds."
        raise HandlerLoadError(_import_failed(module_name, e, fix)) from e
    router = getattr(module, attr, _MISSING)
    if not isinstance(router, Router):
        found = (
            f"Module {module_name!r} has no attribute {attr!r}."
            if router is _MISSING
            else f"'{module_name}:{attr}' is not a Router (found {type(router).__name__})."
        )
        raise HandlerLoadError(f"{found} Use '{module_name}:name' to name the Router.")
    return router


def _import_failed(module_name: str, error: Exception, fix: str) -> str:
    """``While importing …, <Error> was raised at <file>, line <n> (<text>). <fix>``."""
    where = _raised_at(error, module_name)
    at = f" at {where}" if where else ""
    text = f" ({error})" if str(error) else ""
    return f"While importing {module_name!r}, {type(error).__name__} was raised{at}{text}. {fix}"


def _raised_at(error: BaseException, module_name: str) -> str:
    """``<file>, line <n>`` of the deepest frame in the user's own package, or "".

    The deepest frame overall is often in a library the module called (``Router`` itself for a
    keyword registered twice); the line of the user's code that called it is the one to fix.
    """
    package = module_name.partition(".")[0]
    where = ""
    for frame, line in traceback.walk_tb(error.__traceback__):
        name = frame.f_globals.get("__name__")
        if isinstance(name, str) and (name == package or name.startswith(package + ".")):
            where = f"{frame.f_code.co_filename}, line {line}"
    return where


_MISSING = object()


def _put_cwd_on_path() -> None:
    cwd = os.getcwd()
    on_path = {os.path.realpath(entry or cwd) for entry in sys.path}
    if os.path.realpath(cwd) not in on_path:
        sys.path.insert(0, cwd)
