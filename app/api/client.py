"""The two API clients: :class:`WeChatAPI` (blocking) and :class:`AsyncWeChatAPI` (asyncio).

Both have every endpoint of the families (:mod:`.messages`, :mod:`.templates`, :mod:`.media`,
:mod:`.users`, :mod:`.qrcodes`, :mod:`.menus`), built once as :class:`~.call.Call` objects,
and differ only in how they wait. What they guarantee:

* **One access_token for every process and host.** It comes from
  :class:`~.token.SharedAccessToken` in the shared store, refreshed by one process under the
  store's lock (stable_token by default; the classic endpoint revokes the previous token on
  each fetch, so it must never be fetched by two processes).
* **A refused token is replaced once.** A call answered 40001, 40014 or 42001 gets a new
  token (or the one another process cached meanwhile) and is sent once more (wechatpy's
  ``_handle_result`` does the same, without the lock).
* **Network failures are retried, messages are never sent twice.** A failure is retried
  ``retries`` times, ``backoff`` seconds doubling, only when repeating is harmless: the
  request certainly never left (no connection), or the call is idempotent (reads, token
  fetches, uploads, a template message with a ``client_msg_id``). A message that may have
  reached WeChat (a timeout or reset after sending, an answer lost) is not repeated.
  -1 "system busy" is retried under the same rule.
* **No secret in a log line or an error.** URLs are logged and reported with the
  access_token and AppSecret replaced by ``***``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import urllib.parse
import weakref
from typing import Any, ClassVar

import httpx

from .. import metrics
from ..store import Store
from .call import API_BASE, MP_BASE, Answer, AsyncCaller, Call, Caller, SyncCaller, T
from .errors import TOKEN_ERRORS, APIError, APIUnavailable, SystemBusy
from .media import Media
from .menus import Menus
from .messages import Messages
from .qrcodes import QRCodes
from .templates import Templates
from .token import SharedAccessToken
from .transport import (
    BadAnswer,
    Body,
    answer_limit,
    decode,
    never_sent,
    redact,
    redact_httpx_log,
    request_content,
    url_for,
)
from .users import Users

logger = logging.getLogger(__name__)

#: httpx writes a request's headers and body separately; with Nagle's algorithm the body then
#: waits for the server's delayed ACK of the headers, 40 ms on Linux, on every POST.
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

#: Failures of one attempt that may be retried.
_FAILURES = (httpx.TransportError, BadAnswer, SystemBusy)


class _Client(Caller):
    """What both clients share: options, the token, the URL, and when to retry.

    :param appid: the account's AppID.
    :param appsecret: its AppSecret; kept private, never logged or put in an error.
    :param store: holds the cached access_token and the refresh lock; give every process of
        the service the same one (SQLite on one host, Redis across hosts).
    :param base_url: where the API lives; a fake or an egress proxy in tests and some networks.
    :param token_endpoint: ``"stable"`` for ``POST /cgi-bin/stable_token`` (the same token for
        every caller until it nears expiry) or ``"classic"`` for ``GET /cgi-bin/token``.
    :param miniprogram: the account is a Mini Program: customer-service messages are limited
        to its four types, uploads to images, and Official Account families refuse.
    :param qrcode_base_url: where QR-code images are served; ``https://mp.weixin.qq.com`` when
        ``base_url`` is WeChat's own, otherwise ``base_url`` (a fake or proxy serves both).
    :param transport: an httpx transport to send through instead of the network
        (``httpx.MockTransport`` in tests, which serves both clients).
    :param timeout: seconds for connecting, for each read and write, and for a free pooled
        connection.
    :param retries: extra attempts after a failure, ``backoff``, ``2 * backoff``, ... apart.
    :param refresh_margin: refresh a token when it has less than this many seconds left
        (at most half its life); stable tokens rotate five minutes before expiry, hence 300.
    :param lock_wait: seconds to wait for another process's refresh before giving up.
    :param max_connections: connections kept open to WeChat at most.
    :raises ValueError: for an empty AppID or AppSecret or an out-of-range option.
    """

    #: The transport type the subclass's httpx client takes.
    _transport_type: ClassVar[type[Any]]

    def __init__(
        self,
        appid: str,
        appsecret: str,
        store: Store,
        *,
        base_url: str = API_BASE,
        token_endpoint: str = "stable",
        miniprogram: bool = False,
        qrcode_base_url: str | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        refresh_margin: float = 300.0,
        lock_wait: float = 10.0,
        max_connections: int = 20,
    ) -> None:
        if not appid or not appsecret:
            raise ValueError("WeChatAPI needs the AppID and the AppSecret (the console's 开发设置)")
        if token_endpoint not in ("stable", "classic"):
            raise ValueError(
                f"token_endpoint must be 'stable' or 'classic', not {token_endpoint!r}"
            )
        for name, url in (("base_url", base_url), ("qrcode_base_url", qrcode_base_url)):
            if url is not None and urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s) URL, not {url!r}")
        if timeout <= 0 or retries < 0 or backoff < 0 or refresh_margin < 0 or lock_wait < 0:
            raise ValueError(
                "timeout must be positive; retries, backoff, margin, wait not negative"
            )
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections}")
        if transport is not None and not isinstance(transport, self._transport_type):
            raise TypeError(
                f"{type(self).__name__} needs an {self._transport_type.__name__},"
                f" not {type(transport).__name__}"
            )
        self.appid = appid
        self.miniprogram = miniprogram
        self._secret = appsecret
        self._base_url = base_url.rstrip("/")
        default_mp = MP_BASE if self._base_url == API_BASE else self._base_url
        self._mp_base = (qrcode_base_url or default_mp).rstrip("/")
        self._stable = token_endpoint == "stable"
        self._transport = transport
        self._timeout = httpx.Timeout(timeout)
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._retries = retries
        self._backoff = backoff
        # The lock must outlive the slowest fetch, or a second process would fetch alongside.
        slowest_fetch = (retries + 1) * timeout + backoff * (2**retries - 1)
        self._http_lock = threading.Lock()
        self._token = SharedAccessToken(
            store,
            appid,
            refresh_margin=refresh_margin,
            lock_ttl=max(15.0, slowest_fetch + 5.0),
            lock_wait=lock_wait,
        )
        redact_httpx_log()

    # -- the access_token -----------------------------------------------------------------

    def _token_call(self, force: bool) -> Call[tuple[str, float]]:
        credentials = {"grant_type": "client_credential", "appid": self.appid}
        if self._stable:
            path = "/cgi-bin/stable_token"
            body = {**credentials, "secret": self._secret, "force_refresh": force}
            return Call(
                "POST",
                path,
                lambda answer: self._fetched(path, force, answer),
                body=body,
                token=False,
                idempotent=True,
            )
        path = "/cgi-bin/token"
        return Call(
            "GET",
            path,
            lambda answer: self._fetched(path, force, answer),
            params={**credentials, "secret": self._secret},
            token=False,
            idempotent=True,
        )

    def _fetched(self, path: str, force: bool, answer: Answer) -> tuple[str, float]:
        token, expires_in = answer.json.get("access_token"), answer.json.get("expires_in", 7200)
        if not isinstance(token, str) or not token:
            raise APIUnavailable(f"{path} answered without an access_token")
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            raise APIUnavailable(f"{path} answered with expires_in {expires_in!r}, not a number")
        if expires_in <= 0:
            raise APIUnavailable(f"{path} answered with expires_in {expires_in!r}")
        metrics.TOKEN_REFRESHES.inc()
        forced = " (forced)" if force else ""
        logger.info("access_token of %s fetched from %s%s", self.appid, path, forced)
        return token, float(expires_in)

    # -- one attempt, and whether to make another -------------------------------------------

    def _target(self, call: Call[Any], token: str | None) -> tuple[str, tuple[str, ...]]:
        base = self._mp_base if call.host == "mp" else self._base_url
        return url_for(call, base, token), (self._secret, token or "")

    def _retry_delay(
        self, call: Call[Any], error: Exception, attempt: int, secrets: tuple[str, ...]
    ) -> float:
        """Seconds to wait before attempt ``attempt + 1``; raise when there is none."""
        retryable = not isinstance(error, BadAnswer) or error.retryable
        harmless = call.idempotent or never_sent(error)
        if retryable and harmless and attempt <= self._retries:
            reason = redact(f"{type(error).__name__}: {error}", *secrets)
            logger.warning("%s %s failed (%s); retrying", call.method, self._name(call), reason)
            return float(self._backoff * 2 ** (attempt - 1))
        if isinstance(error, APIError):
            raise error
        reason = redact(
            str(error) if isinstance(error, BadAnswer) else f"{type(error).__name__}: {error}",
            *secrets,
        )
        why = "; not repeated, as it may have reached WeChat" if retryable and not harmless else ""
        raise APIUnavailable(
            f"{call.method} {self._name(call)}: no usable answer after {attempt} attempt(s)"
            f" ({reason}){why}"
        ) from None  # the cause's attributes may hold the URL and its token

    @staticmethod
    def _name(call: Call[Any]) -> str:
        """The call's path, or an absolute URL without its query."""
        return urllib.parse.urlsplit(call.path).path if call.absolute else call.path

    def _refused(self, call: Call[Any], error: APIError) -> None:
        """Re-raise ``error`` unless it refuses the token, which is then replaced once."""
        if not call.token or error.errcode not in TOKEN_ERRORS:
            raise error
        logger.warning(
            "%s refused the access_token (%d); replacing it once", call.path, error.errcode
        )


class WeChatAPI(_Client, SyncCaller, Messages, Templates, Media, Users, QRCodes, Menus):
    """One account's API client that blocks; safe to share between threads, and between
    processes and hosts through a shared ``store``. Parameters: see :class:`_Client`.

    Connections are kept in a pool made on first use; :meth:`close` (or a ``with`` block)
    closes them, and so does garbage collection.
    """

    _transport_type = httpx.BaseTransport
    _http: httpx.Client | None = None
    _closer: weakref.finalize[Any, Any] | None = None

    def access_token(self) -> str:
        """Return a usable access_token, fetching one only if no process has cached one.

        :raises APIError: the token endpoint refused (40001 wrong AppSecret, 40013 wrong
            AppID, 40164 IP not whitelisted, 45009 daily quota, ...).
        :raises APIUnavailable: no answer; :class:`TokenRefreshTimeout` when another process
            held the refresh lock too long.
        :raises app.store.StoreError: the store failed.
        """
        return self._token.get(self._fetch)

    def close(self) -> None:
        """Close the kept connections; a later call opens new ones."""
        with self._http_lock:
            if self._closer is not None:
                self._closer()
            self._http = self._closer = None

    def __enter__(self) -> WeChatAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _fetch(self, force: bool) -> tuple[str, float]:
        return self._run(self._token_call(force))

    def _run(self, call: Call[T]) -> T:
        try:
            result = call.parse(self._authorized(call))
        except APIError as e:
            if call.recover is None:
                raise
            result = call.recover(e)
        return self._run(result) if isinstance(result, Call) else result

    def _authorized(self, call: Call[Any]) -> Answer:
        if not call.token:
            return self._send(call, None)
        token = self.access_token()
        try:
            return self._send(call, token)
        except APIError as e:
            self._refused(call, e)
        return self._send(call, self._token.replace(token, self._fetch))

    def _send(self, call: Call[Any], token: str | None) -> Answer:
        url, secrets = self._target(call, token)
        for attempt in range(1, self._retries + 2):
            logger.debug("%s %s", call.method, redact(url, *secrets))
            try:
                return self._exchange(call, url, secrets)
            except _FAILURES as e:
                delay = self._retry_delay(call, e, attempt, secrets)
            time.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _exchange(self, call: Call[Any], url: str, secrets: tuple[str, ...]) -> Answer:
        with self._client().stream(call.method, url, **request_content(call)) as response:
            body = Body(answer_limit(call))
            for chunk in response.iter_bytes():
                body.add(chunk)
        content_type = response.headers.get("content-type", "")
        return decode(call, response.status_code, content_type, body.bytes(), secrets=secrets)

    def _client(self) -> httpx.Client:
        with self._http_lock:
            if self._http is None:
                transport = self._transport or httpx.HTTPTransport(
                    limits=self._limits, socket_options=NO_DELAY
                )
                self._http = httpx.Client(transport=transport, timeout=self._timeout)
                self._closer = weakref.finalize(self, self._http.close)
            return self._http


class AsyncWeChatAPI(_Client, AsyncCaller, Messages, Templates, Media, Users, QRCodes, Menus):
    """The same client for asyncio code: every endpoint is a coroutine.

    It shares the access_token with every other client of the store, sync or async. Its
    connections belong to the event loop that made them: use one per loop, and close it with
    ``await api.aclose()`` or ``async with``. The store is blocking, so its reads and the
    refresh lock run on a worker thread; the token fetch itself is sent from the loop.
    """

    _transport_type = httpx.AsyncBaseTransport
    _http: httpx.AsyncClient | None = None

    async def access_token(self) -> str:
        """Return a usable access_token; see :meth:`WeChatAPI.access_token`."""
        return await self._shared_token(refused=None)

    async def aclose(self) -> None:
        """Close the kept connections; a later call opens new ones."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    async def __aenter__(self) -> AsyncWeChatAPI:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _shared_token(self, refused: str | None) -> str:
        loop = asyncio.get_running_loop()

        def fetch(force: bool) -> tuple[str, float]:
            # Runs on the worker thread that holds the lock; the request goes from the loop.
            future = asyncio.run_coroutine_threadsafe(self._run(self._token_call(force)), loop)
            return future.result()

        if refused is None:
            return await asyncio.to_thread(self._token.get, fetch)
        return await asyncio.to_thread(self._token.replace, refused, fetch)

    async def _run(self, call: Call[T]) -> T:
        try:
            result = call.parse(await self._authorized(call))
        except APIError as e:
            if call.recover is None:
                raise
            result = call.recover(e)
        return await self._run(result) if isinstance(result, Call) else result

    async def _authorized(self, call: Call[Any]) -> Answer:
        if not call.token:
            return await self._send(call, None)
        token = await self._shared_token(refused=None)
        try:
            return await self._send(call, token)
        except APIError as e:
            self._refused(call, e)
        return await self._send(call, await self._shared_token(refused=token))

    async def _send(self, call: Call[Any], token: str | None) -> Answer:
        url, secrets = self._target(call, token)
        for attempt in range(1, self._retries + 2):
            logger.debug("%s %s", call.method, redact(url, *secrets))
            try:
                return await self._exchange(call, url, secrets)
            except _FAILURES as e:
                delay = self._retry_delay(call, e, attempt, secrets)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _exchange(self, call: Call[Any], url: str, secrets: tuple[str, ...]) -> Answer:
        if self._http is None:
            transport = self._transport or httpx.AsyncHTTPTransport(
                limits=self._limits, socket_options=NO_DELAY
            )
            self._http = httpx.AsyncClient(transport=transport, timeout=self._timeout)
        async with self._http.stream(call.method, url, **request_content(call)) as response:
            body = Body(answer_limit(call))
            async for chunk in response.aiter_bytes():
                body.add(chunk)
        content_type = response.headers.get("content-type", "")
        return decode(call, response.status_code, content_type, body.bytes(), secrets=secrets)
