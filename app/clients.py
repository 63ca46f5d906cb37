"""The service's clients of WeChat's API: one blocking client, one async client per handler loop.

The blocking :class:`~app.api.WeChatAPI` is shared by late delivery and every plain handler
(``ctx.api``); each handler thread's event loop gets an :class:`~app.api.AsyncWeChatAPI` of its
own (``ctx.async_api``), since an async client's connections belong to one loop. All of them
share the access_token through the store, and all send through one seam, :class:`Transport`,
which the test kit (:mod:`app.testing`) uses to see what the service sent and to send it to a
fake instead of the network.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx

from config import AccountType, Settings

from .api import AsyncWeChatAPI, WeChatAPI
from .api.client import NO_DELAY
from .loops import Loops
from .store import Store
from .threads import PerThread

#: Connections kept open to WeChat per client.
CONNECTIONS = 20

_JSON = "application/json"

#: Sees each JSON request the clients send: its method, path and body.
Observer = Callable[[str, str, Any], None]


class Transport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Sends through the network, or a replacement, and shows JSON requests to observers.

    ``httpx.MockTransport`` serves both kinds of client, so a test can set one as
    :attr:`replacement`; the network transports are made per client, as httpx wants.
    """

    def __init__(self, inner: httpx.BaseTransport | httpx.AsyncBaseTransport, hub: _Hub) -> None:
        self._inner = inner
        self._hub = hub

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self._observe(request)
        inner = self._replacement() or self._inner
        assert isinstance(inner, httpx.BaseTransport)
        return inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._observe(request)
        inner = self._replacement() or self._inner
        assert isinstance(inner, httpx.AsyncBaseTransport)
        return await inner.handle_async_request(request)

    def close(self) -> None:
        if isinstance(self._inner, httpx.BaseTransport):
            self._inner.close()

    async def aclose(self) -> None:
        if isinstance(self._inner, httpx.AsyncBaseTransport):
            await self._inner.aclose()

    def _replacement(self) -> httpx.MockTransport | None:
        return self._hub.replacement

    def _observe(self, request: httpx.Request) -> None:
        observers = tuple(self._hub.observers)
        if not observers or not request.headers.get("content-type", "").startswith(_JSON):
            return
        body = json.loads(request.content)
        for observer in observers:
            observer(request.method, request.url.path, body)


class ThreadTransports(httpx.BaseTransport):
    """The blocking client's connections to WeChat: a pool per native thread under gevent
    (:mod:`app.threads`: handlers and late delivery run on many threads), one pool otherwise."""

    def __init__(self) -> None:
        self._pools = PerThread(_network)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._pools.here().handle_request(request)

    def close(self) -> None:
        """Close this thread's connections and the shared ones; those of other threads belong
        to their hubs, which may be gone, and close with the process."""
        here = self._pools.here()
        here.close()
        if here is not self._pools.shared:
            self._pools.shared.close()


def _network() -> httpx.HTTPTransport:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    return httpx.HTTPTransport(limits=limits, socket_options=NO_DELAY)


class _Hub:
    """What every transport of one service shares: observers and a replacement."""

    def __init__(self) -> None:
        self.observers: list[Observer] = []
        self.replacement: httpx.MockTransport | None = None


class Clients:
    """The API clients of one account; None of them without an AppSecret.

    :raises ValueError: see :class:`~app.api.WeChatAPI`.
    """

    def __init__(self, settings: Settings, store: Store, loops: Loops) -> None:
        self._settings = settings
        self._store = store
        self._loops = loops
        self._hub = _Hub()
        self._lock = threading.Lock()
        self.api: WeChatAPI | None = None
        if settings.appsecret:
            self.api = WeChatAPI(**self._options(self._transport(ThreadTransports())))

    def async_api(self) -> AsyncWeChatAPI:
        """The async client of the running handler loop.

        :raises RuntimeError: no AppSecret, or not on a loop of the service (:mod:`app.loops`).
        """
        if self.api is None:
            raise RuntimeError(_NO_API)
        return self._loops.resource("AsyncWeChatAPI", self._make_async, _aclose)

    def watch(self, observer: Observer) -> None:
        """Show every JSON request the clients send from now on to ``observer``."""
        with self._lock:
            self._hub.observers.append(observer)

    def send_to(self, transport: httpx.MockTransport) -> None:
        """Send every request to ``transport`` instead of the network (a fake, in tests)."""
        self._hub.replacement = transport

    def close(self) -> None:
        if self.api is not None:
            self.api.close()

    def _make_async(self) -> AsyncWeChatAPI:
        limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
        network = httpx.AsyncHTTPTransport(limits=limits, socket_options=NO_DELAY)
        return AsyncWeChatAPI(**self._options(self._transport(network)))

    def _transport(self, network: httpx.BaseTransport | httpx.AsyncBaseTransport) -> Transport:
        return Transport(network, self._hub)

    def _options(self, transport: Transport) -> dict[str, Any]:
        settings = self._settings
        return {
            "appid": settings.appid,
            "appsecret": settings.appsecret,
            "store": self._store,
            "base_url": settings.api_base,
            "token_endpoint": settings.token_endpoint.value,
            "miniprogram": settings.account_type is AccountType.MINIPROGRAM,
            "transport": transport,
        }


_NO_API = "the API needs WX_APPSECRET (and WX_APPID): set them to call WeChat from handlers"


async def _aclose(api: AsyncWeChatAPI) -> None:
    await api.aclose()
