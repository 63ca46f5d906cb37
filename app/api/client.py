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
import time
import weakref
from typing import Any

import httpx

from .base import ClientBase
from .call import Answer, AsyncCaller, Call, SyncCaller, T
from .errors import APIError, SystemBusy
from .media import Media
from .menus import Menus
from .messages import Messages
from .qrcodes import QRCodes
from .templates import Templates
from .transport import BadAnswer, Body, answer_limit, decode, redact, request_content
from .users import Users

logger = logging.getLogger(__name__)


#: httpx writes a request's headers and its body separately; with Nagle's algorithm the body
#: can wait for the server's delayed ACK of the headers (up to 40 ms on Linux). The same stall
#: in the other direction cost every call 40 ms against a server that did not set it.
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]

#: Failures of one attempt that may be retried.
_FAILURES = (httpx.TransportError, BadAnswer, SystemBusy)


class WeChatAPI(ClientBase, SyncCaller, Messages, Templates, Media, Users, QRCodes, Menus):
    """One account's API client that blocks; safe to share between threads, and between
    processes and hosts through a shared ``store``. Parameters: see :class:`~.base.ClientBase`.

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


class AsyncWeChatAPI(ClientBase, AsyncCaller, Messages, Templates, Media, Users, QRCodes, Menus):
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
