"""One API call as data, apart from how it is sent: the half of the client that does no I/O.

Every endpoint is a method that validates its arguments and builds a :class:`Call` (method,
path, body, whether repeating it is harmless, how to read the answer). The :func:`endpoint`
decorator turns such a method into one that runs the call: on :class:`app.api.WeChatAPI` it
returns the result, on :class:`app.api.AsyncWeChatAPI` an awaitable of it. So the payload of
each message is written once, and both clients share the token, the retries and the errors.

A result may itself be a :class:`Call`, which the client then runs: that is how a video
download follows the ``video_url`` WeChat answers with, without any I/O here.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Concatenate, Generic, Literal, ParamSpec, Self, TypeVar, overload

from .errors import APIError

T = TypeVar("T")
P = ParamSpec("P")

#: WeChat's API host, and the one that serves QR-code images.
API_BASE = "https://api.weixin.qq.com"
MP_BASE = "https://mp.weixin.qq.com"


@dataclass(frozen=True)
class Answer:
    """What WeChat answered: a JSON object, or a file."""

    #: The JSON object; empty for a file.
    json: dict[str, Any]
    #: The file's bytes; empty for a JSON answer.
    content: bytes = b""
    #: The file's ``Content-Type``.
    content_type: str = ""


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart body."""

    #: The form field's name (``media`` for media uploads).
    name: str
    filename: str
    content: bytes
    content_type: str


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request and how to read its answer.

    The client adds the access_token, sends, retries, decodes the answer (an errcode becomes
    an :class:`APIError`) and hands the :class:`Answer` to ``parse``.
    """

    method: Literal["GET", "POST"]
    #: A path on ``host``, or an absolute URL WeChat pointed to (sent without a token).
    path: str
    #: Turns the answer into the result, or into the next call to make.
    parse: Callable[[Answer], T | Call[T]]
    #: The JSON body, sent as UTF-8 without ``\\u`` escapes.
    body: Mapping[str, Any] | None = None
    #: Query parameters besides the access_token.
    params: Mapping[str, str] = field(default_factory=dict)
    #: A file to send as ``multipart/form-data``.
    upload: Upload | None = None
    #: Whether the access_token goes in the query.
    token: bool = True
    #: Whether sending it twice is harmless, so a failure that may have reached WeChat can be
    #: retried. A message to a user never is: the user would see it twice.
    idempotent: bool = False
    #: Whether the answer may be a file rather than JSON.
    binary: bool = False
    #: ``api`` (the API base URL) or ``mp`` (where QR-code images are served).
    host: Literal["api", "mp"] = "api"
    #: Turns some refusals into a result or another call; re-raises the others.
    recover: Callable[[APIError], T | Call[T]] | None = None

    @property
    def absolute(self) -> bool:
        """Whether ``path`` is a whole URL."""
        return self.path.startswith(("http://", "https://"))


def json_answer(answer: Answer) -> dict[str, Any]:
    """The answer's JSON object, for calls whose result is WeChat's answer itself."""
    return answer.json


class Caller:
    """What endpoint methods may read from the client that runs them."""

    appid: str
    #: Whether the account is a Mini Program, which narrows messages and media.
    miniprogram: bool
    _mp_base: str

    def qrcode_image_url(self, ticket: str) -> str:
        """The URL of a QR code's image: ``showqrcode`` with the ticket percent-encoded
        (tickets are base64-like, with ``+``, ``/`` and ``=``). No token is needed."""
        return f"{self._mp_base}/cgi-bin/showqrcode?ticket={urllib.parse.quote(ticket, safe='')}"

    def _official_only(self, what: str) -> None:
        if self.miniprogram:
            raise ValueError(f"{what} are for Official Accounts; this account is a Mini Program")


class SyncCaller(Caller):
    """A client whose endpoints return their result."""

    def _run(self, call: Call[T]) -> T:
        raise NotImplementedError


class AsyncCaller(Caller):
    """A client whose endpoints return an awaitable of their result."""

    async def _run(self, call: Call[T]) -> T:
        raise NotImplementedError


class endpoint(Generic[P, T]):
    """Make a method that builds a :class:`Call` into one that runs it on its client."""

    def __init__(self, build: Callable[Concatenate[Any, P], Call[T]]) -> None:
        self._build = build
        self.__name__ = build.__name__
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, client: None, owner: type) -> Self: ...

    @overload
    def __get__(self, client: SyncCaller, owner: type) -> Callable[P, T]: ...

    @overload
    def __get__(self, client: AsyncCaller, owner: type) -> Callable[P, Awaitable[T]]: ...

    def __get__(self, client: Caller | None, owner: type) -> Any:
        if client is None:
            return self
        build = self._build
        if isinstance(client, AsyncCaller):
            runner = client

            async def run_async(*args: P.args, **kwargs: P.kwargs) -> T:
                return await runner._run(build(runner, *args, **kwargs))

            method: Callable[..., Any] = run_async
        elif isinstance(client, SyncCaller):
            sync_runner = client

            def run(*args: P.args, **kwargs: P.kwargs) -> T:
                return sync_runner._run(build(sync_runner, *args, **kwargs))

            method = run
        else:
            raise TypeError(f"{type(client).__name__} cannot run API calls")
        method.__name__ = method.__qualname__ = self.__name__
        method.__doc__ = self.__doc__
        return method
