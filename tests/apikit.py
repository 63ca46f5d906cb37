"""What the tests of the API client share: the account, a scripted transport, the fake, and
one way to make a call on either client.

Two ways in: :class:`Script` (what is sent, byte for byte, with no network, through
``httpx.MockTransport``) and the fake API of ``tests/fakewechat.py`` over real HTTP (what WeChat
would see, and how it answers). The ``call`` fixture runs each test twice, on
:class:`~app.api.WeChatAPI` and on :class:`~app.api.AsyncWeChatAPI`. Test modules import the
fixtures they use under their ``*_fixture`` names (pytest knows them as ``fake``, ``call`` and
``scripted_call``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from app.api import AsyncWeChatAPI, WeChatAPI
from app.store import MemoryStore, Store
from tests.fakewechat import FakeWeChat

APPID = "wx1a2b3c4d5e6f7a8b"
SECRET = "0123456789abcdef0123456789abcdef"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"
BASE = "https://api.weixin.qq.com"
CACHE_KEY = f"access_token:{APPID}"
OK = {"errcode": 0, "errmsg": "ok"}

Answer = dict[str, Any] | httpx.Response | Exception | Callable[[], dict[str, Any]]


class Script:
    """Answers from a script, in order, and records what was sent; then answers "ok"."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        answer = self.answers.pop(0) if self.answers else dict(OK)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = answer()
        if isinstance(answer, httpx.Response):  # a copy: a client binds what it receives
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )
        return httpx.Response(200, json=answer)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    @property
    def paths(self) -> list[str]:
        return [request.url.path for request in self.sent]

    def body(self, n: int) -> Any:
        """The JSON body of the ``n``-th request."""
        return json.loads(self.sent[n].content)


def token(value: str, expires_in: float = 7200) -> dict[str, Any]:
    return {"access_token": value, "expires_in": expires_in}


def scripted(script: Script, *, store: Store | None = None, **options: Any) -> WeChatAPI:
    """A sync client on ``script``, without backoff sleeps."""
    options.setdefault("backoff", 0)
    return WeChatAPI(APPID, SECRET, store or MemoryStore(), transport=script.transport, **options)


def api_for(fake: FakeWeChat, store: Store | None = None, **options: Any) -> WeChatAPI:
    """A sync client of ``fake``, without backoff sleeps."""
    options.setdefault("backoff", 0)
    return WeChatAPI(APPID, SECRET, store or MemoryStore(), base_url=fake.url, **options)


class Caller:
    """Makes calls on a sync or an async client of the same account and store.

    An async client belongs to one event loop, so each async call gets a fresh one (sharing
    the store, hence the token), as a handler running ``asyncio.run`` would.
    """

    def __init__(self, mode: str, store: Store | None = None, **options: Any) -> None:
        options.setdefault("backoff", 0)
        self.mode = mode
        self.store = store or MemoryStore()
        self.options = options
        self._sync = WeChatAPI(APPID, SECRET, self.store, **options)

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.mode == "sync":
            return getattr(self._sync, name)(*args, **kwargs)

        async def call() -> Any:
            async with AsyncWeChatAPI(APPID, SECRET, self.store, **self.options) as api:
                return await getattr(api, name)(*args, **kwargs)

        return asyncio.run(call())

    def close(self) -> None:
        self._sync.close()


@pytest.fixture(name="fake")
def fake_fixture() -> Iterator[FakeWeChat]:
    with FakeWeChat(APPID, SECRET) as server:
        yield server


@pytest.fixture(name="call", params=["sync", "async"])
def call_fixture(request: pytest.FixtureRequest, fake: FakeWeChat) -> Iterator[Caller]:
    """Calls on the fake, once through each client."""
    caller = Caller(request.param, base_url=fake.url)
    yield caller
    caller.close()


@pytest.fixture(name="scripted_call", params=["sync", "async"])
def scripted_call_fixture(request: pytest.FixtureRequest) -> Callable[..., Caller]:
    """``scripted_call(script, **options)``: calls answered by ``script``, through each client."""

    def make(script: Script, **options: Any) -> Caller:
        return Caller(request.param, transport=script.transport, **options)

    return make
