"""WeChat's server API, for replies that cannot be passive: the access_token and customer service.

:class:`WeChatAPI` is the one object the service uses. It gets its access_token from
:class:`app.api_token.SharedAccessToken` (one token for every process, refreshed under the
store's lock), and a call refused with 40001, 40014 or 42001 replaces that token once and is
retried once (``wechatpy``'s ``_handle_result`` does the same, without the lock).

Network failures are retried a bounded number of times with a doubling backoff, but a message
is never sent twice: a call that may have reached WeChat (a timeout, a reset, an answer that is
not JSON) is repeated only when repeating is harmless (token fetches, the typing indicator); a
request that certainly never left (refused connection, DNS failure) always is.

The errors live in :mod:`app.api_errors` (the tree is drawn there) and the transport seam in
:mod:`app.api_transport`; both are re-exported here, so ``from app.client import APIError``
is all a caller needs.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from . import metrics
from .api_errors import TOKEN_ERRORS as TOKEN_ERRORS
from .api_errors import APIError as APIError
from .api_errors import APIUnavailable as APIUnavailable
from .api_errors import ErrorCode as ErrorCode
from .api_errors import TokenRefreshTimeout as TokenRefreshTimeout
from .api_errors import WeChatAPIError as WeChatAPIError
from .api_token import SharedAccessToken
from .api_transport import RequestNotSent as RequestNotSent
from .api_transport import Transport as Transport
from .api_transport import redact
from .api_transport import urllib_transport as urllib_transport
from .store import Store

logger = logging.getLogger(__name__)


class WeChatAPI:
    """One account's API client; safe to share between threads, and between processes and
    hosts through a shared ``store``.

    :param appid: the account's AppID.
    :param appsecret: its AppSecret; kept private, never logged or put in an error.
    :param store: holds the cached access_token and the refresh lock; give every process of
        the service the same one (SQLite on one host, Redis across hosts).
    :param base_url: where the API lives; a fake or an egress proxy in tests and some networks.
    :param token_endpoint: ``"stable"`` for ``POST /cgi-bin/stable_token`` (the same token for
        every caller until it nears expiry) or ``"classic"`` for ``GET /cgi-bin/token``.
    :param transport: sends the requests; the urllib one with ``timeout`` by default.
    :param timeout: seconds per request for the default transport.
    :param retries: extra attempts after a network failure, ``backoff``, ``2 * backoff``, ...
        seconds apart.
    :param refresh_margin: refresh a token when it has less than this many seconds left
        (at most half its life); stable tokens rotate five minutes before expiry, hence 300.
    :param lock_wait: seconds to wait for another process's refresh before giving up.
    :raises ValueError: for an empty AppID or AppSecret or an out-of-range option.
    """

    def __init__(
        self,
        appid: str,
        appsecret: str,
        store: Store,
        *,
        base_url: str = "https://api.weixin.qq.com",
        token_endpoint: str = "stable",
        transport: Transport | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        refresh_margin: float = 300.0,
        lock_wait: float = 10.0,
    ) -> None:
        if not appid or not appsecret:
            raise ValueError("WeChatAPI needs the AppID and the AppSecret (the console's 开发设置)")
        if token_endpoint not in ("stable", "classic"):
            raise ValueError(
                f"token_endpoint must be 'stable' or 'classic', not {token_endpoint!r}"
            )
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise ValueError(f"base_url must be an http(s) URL, not {base_url!r}")
        if timeout <= 0 or retries < 0 or backoff < 0 or refresh_margin < 0 or lock_wait < 0:
            raise ValueError(
                "timeout must be positive; retries, backoff, margin, wait not negative"
            )
        self.appid = appid
        self._secret = appsecret
        self._base_url = base_url.rstrip("/")
        self._stable = token_endpoint == "stable"
        self._transport = transport or urllib_transport(timeout)
        self._retries = retries
        self._backoff = backoff
        # The lock must outlive the slowest fetch, or a second process would fetch alongside.
        slowest_fetch = (retries + 1) * timeout + backoff * (2**retries - 1)
        self._token = SharedAccessToken(
            store,
            appid,
            self._fetch_token,
            refresh_margin=refresh_margin,
            lock_ttl=max(15.0, slowest_fetch + 5.0),
            lock_wait=lock_wait,
        )

    # -- the access_token -----------------------------------------------------------------

    def access_token(self) -> str:
        """Return a usable access_token, fetching one only if no process has cached one.

        :raises APIError: the token endpoint refused (40001 wrong AppSecret, 40013 wrong
            AppID, 40164 IP not whitelisted, 45009 daily quota, ...).
        :raises APIUnavailable: no answer; :class:`TokenRefreshTimeout` when another process
            held the refresh lock too long.
        :raises app.store.StoreError: the store failed.
        """
        return self._token.get()

    def _fetch_token(self, force: bool) -> tuple[str, float]:
        credentials = {"grant_type": "client_credential", "appid": self.appid}
        if self._stable:
            path = "/cgi-bin/stable_token"
            body = {**credentials, "secret": self._secret, "force_refresh": force}
            answer = self._request("POST", path, body, query={}, idempotent=True)
        else:
            path = "/cgi-bin/token"
            query = {**credentials, "secret": self._secret}
            answer = self._request("GET", path, None, query=query, idempotent=True)
        token, expires_in = answer.get("access_token"), answer.get("expires_in", 7200)
        if not isinstance(token, str) or not token:
            raise APIUnavailable(f"{path} answered without an access_token")
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            raise APIUnavailable(f"{path} answered with expires_in {expires_in!r}, not a number")
        if expires_in <= 0:
            raise APIUnavailable(f"{path} answered with expires_in {expires_in!r}")
        forced = " (forced)" if force else ""
        metrics.TOKEN_REFRESHES.inc()
        logger.info("access_token of %s fetched from %s%s", self.appid, path, forced)
        return token, float(expires_in)

    # -- calls ----------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        """Call an API path with the shared access_token; replace it and retry once if refused.

        :param idempotent: whether repeating the call is harmless, which allows retrying it
            after a failure that may have reached WeChat; by default only GETs are.
        :return: the answer, whose ``errcode`` is 0 or absent.
        :raises APIError: WeChat answered with a non-zero errcode (a refused token: twice).
        :raises APIUnavailable: no usable answer.
        """
        repeatable = method == "GET" if idempotent is None else idempotent
        token = self.access_token()
        try:
            return self._request(method, path, body, token=token, idempotent=repeatable)
        except APIError as e:
            if e.errcode not in TOKEN_ERRORS:
                raise
            logger.warning("%s refused the access_token (%d); replacing it once", path, e.errcode)
        token = self._token.replace(token)
        return self._request(method, path, body, token=token, idempotent=repeatable)

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        idempotent: bool,
        token: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One API request with the network retries; raise for a non-zero errcode."""
        params = dict(query or {}) if token is None else {"access_token": token}
        url = self._base_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        secrets = (self._secret, token or "")
        answer = self._send(method, url, path, body, secrets=secrets, idempotent=idempotent)
        errcode = answer.get("errcode") or 0
        try:
            code = int(errcode)
        except (TypeError, ValueError):
            raise APIUnavailable(
                f"{path} answered with errcode {errcode!r}, not a number"
            ) from None
        if code:
            errmsg = redact(str(answer.get("errmsg", "")), *secrets)
            raise APIError(code, errmsg, path=path)
        return answer

    def _send(
        self,
        method: str,
        url: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        secrets: tuple[str, ...],
        idempotent: bool,
    ) -> dict[str, Any]:
        attempts = self._retries + 1
        for attempt in range(1, attempts + 1):
            logger.debug("%s %s", method, redact(url, *secrets))
            try:
                return self._transport(method, url, body)
            except (OSError, ValueError) as e:  # URLError and timeouts are OSErrors
                reason = redact(f"{type(e).__name__}: {e}", *secrets)
                safe = idempotent or isinstance(e, RequestNotSent | ConnectionRefusedError)
                if not safe or attempt == attempts:
                    why = "" if safe else "; not repeated, as it may have reached WeChat"
                    raise APIUnavailable(
                        f"{method} {path}: no usable answer after {attempt} attempt(s)"
                        f" ({reason}){why}"
                    ) from None  # the cause's attributes may hold the URL and its token
                logger.warning("%s %s failed (%s); retrying", method, path, reason)
                time.sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    # -- customer-service messages (客服消息), PROTOCOL.md §7 ---------------------------------

    def send_custom(self, openid: str, msgtype: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``{"touser": openid, "msgtype": msgtype, msgtype: payload}``; every ``send_*``
        below goes through here. Not retried after an ambiguous network failure, so a user
        never receives a message twice.

        :raises APIError: e.g. 45015 (the window after the user's message has passed), 45047
            (too many messages in the window), 40003 (not a user of this account).
        :raises APIUnavailable: no usable answer.
        """
        body = {"touser": openid, "msgtype": msgtype, msgtype: dict(payload)}
        return self.call("POST", "/cgi-bin/message/custom/send", body, idempotent=False)

    def send_text(self, openid: str, content: str) -> dict[str, Any]:
        return self.send_custom(openid, "text", {"content": content})

    def send_image(self, openid: str, media_id: str) -> dict[str, Any]:
        return self.send_custom(openid, "image", {"media_id": media_id})

    def send_voice(self, openid: str, media_id: str) -> dict[str, Any]:
        return self.send_custom(openid, "voice", {"media_id": media_id})

    def send_video(
        self,
        openid: str,
        media_id: str,
        thumb_media_id: str,
        title: str = "",
        description: str = "",
    ) -> dict[str, Any]:
        video = {
            "media_id": media_id,
            "thumb_media_id": thumb_media_id,
            "title": title,
            "description": description,
        }
        return self.send_custom(openid, "video", video)

    def send_music(
        self,
        openid: str,
        musicurl: str,
        hqmusicurl: str,
        thumb_media_id: str,
        title: str = "",
        description: str = "",
    ) -> dict[str, Any]:
        """Parameters are named after the JSON fields (``musicurl``, ``hqmusicurl``)."""
        music = {
            "title": title,
            "description": description,
            "musicurl": musicurl,
            "hqmusicurl": hqmusicurl,
            "thumb_media_id": thumb_media_id,
        }
        return self.send_custom(openid, "music", music)

    def send_news(self, openid: str, articles: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """``articles``: mappings with title, description, url and picurl; WeChat shows one."""
        return self.send_custom(openid, "news", {"articles": [dict(a) for a in articles]})

    def send_mpnews(self, openid: str, media_id: str) -> dict[str, Any]:
        return self.send_custom(openid, "mpnews", {"media_id": media_id})

    def send_msgmenu(
        self,
        openid: str,
        head_content: str,
        options: Sequence[tuple[str, str]],
        tail_content: str = "",
    ) -> dict[str, Any]:
        """Tappable ``(id, content)`` options; a tap comes back as a text message whose
        ``bizmsgmenuid`` is the option's id."""
        menu = {
            "head_content": head_content,
            "list": [{"id": option_id, "content": content} for option_id, content in options],
            "tail_content": tail_content,
        }
        return self.send_custom(openid, "msgmenu", menu)

    def send_wxcard(self, openid: str, card_id: str) -> dict[str, Any]:
        return self.send_custom(openid, "wxcard", {"card_id": card_id})

    def send_miniprogrampage(
        self, openid: str, title: str, pagepath: str, thumb_media_id: str, appid: str | None = None
    ) -> dict[str, Any]:
        """A Mini Program card. An Official Account names the Mini Program's ``appid``; a Mini
        Program sending its own page leaves it out."""
        page = {"title": title} | ({} if appid is None else {"appid": appid})
        page.update(pagepath=pagepath, thumb_media_id=thumb_media_id)
        return self.send_custom(openid, "miniprogrampage", page)

    def send_link(
        self, openid: str, title: str, description: str, url: str, thumb_url: str
    ) -> dict[str, Any]:
        """A link card: Mini Program customer service only."""
        link = {"title": title, "description": description, "url": url, "thumb_url": thumb_url}
        return self.send_custom(openid, "link", link)

    def typing(self, openid: str, on: bool = True) -> dict[str, Any]:
        """Show "typing…" to the user while a slow reply is prepared, or stop showing it."""
        body = {"touser": openid, "command": "Typing" if on else "CancelTyping"}
        return self.call("POST", "/cgi-bin/message/custom/typing", body, idempotent=True)
