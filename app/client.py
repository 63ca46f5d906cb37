"""WeChat's server API, for replies that cannot be passive: access_token and customer service.

Every process and host must use one access_token: each call of ``/cgi-bin/token`` issues a new
one and revokes the previous within minutes, so processes refreshing on their own knock each
other out with 40001 (PROTOCOL.md §7). The token therefore lives in the shared store, and only
the holder of the store's lock fetches a new one; everyone else reads the cache.

Errors::

    WeChatAPIError                 base: the call did not succeed
    ├── APIError                   WeChat answered with a non-zero errcode (.errcode, .errmsg)
    └── APIUnavailable             no usable answer after bounded retries (network, not JSON)

Requests go through one :data:`Transport` callable, so tests swap the network for a function
and a proxy or fake of WeChat's API is one ``base_url`` away.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from typing import Any

from .store import Store

logger = logging.getLogger(__name__)

#: (method, url, json body or None) -> the decoded JSON object of the answer.
Transport = Callable[[str, str, Mapping[str, Any] | None], dict[str, Any]]


class ErrorCode(IntEnum):
    """Error codes of WeChat's API that the service acts on or explains (PROTOCOL.md §7)."""

    SYSTEM_BUSY = -1
    INVALID_CREDENTIAL = 40001
    INVALID_OPENID = 40003
    INVALID_APPID = 40013
    INVALID_ACCESS_TOKEN = 40014
    IP_NOT_WHITELISTED = 40164
    ACCESS_TOKEN_EXPIRED = 42001
    DAILY_QUOTA = 45009
    MINUTE_QUOTA = 45011
    REPLY_WINDOW_PASSED = 45015
    TOO_MANY_REPLIES = 45047
    NO_PERMISSION = 48001


#: Answers that mean "this access_token is no good": refresh it and try once more.
TOKEN_ERRORS = frozenset(
    {ErrorCode.INVALID_CREDENTIAL, ErrorCode.INVALID_ACCESS_TOKEN, ErrorCode.ACCESS_TOKEN_EXPIRED}
)


class WeChatAPIError(Exception):
    """Base class: an API call did not succeed."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIError(WeChatAPIError):
    """WeChat answered with a non-zero ``errcode``."""

    def __init__(self, path: str, errcode: int, errmsg: str) -> None:
        try:
            name = f" ({ErrorCode(errcode).name})"
        except ValueError:
            name = ""
        super().__init__(f"{path} failed: errcode {errcode}{name}: {errmsg}")
        #: WeChat's error code, e.g. 45015 when the 48-hour window has passed.
        self.errcode = errcode
        #: WeChat's own text.
        self.errmsg = errmsg


class APIUnavailable(WeChatAPIError):
    """No usable answer from the API after the retries: network trouble or a broken proxy."""


def urllib_transport(timeout: float) -> Transport:
    """The default transport: one HTTPS request with the standard library."""

    def send(method: str, url: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json; charset=utf-8")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read().decode("utf-8"))
        if not isinstance(answer, dict):
            raise ValueError(f"answer is a JSON {type(answer).__name__}, expected an object")
        return answer

    return send


class WeChatAPI:
    """One account's API client; safe to share between threads.

    :param store: where the access_token is cached and the refresh lock lives.
    :param token_endpoint: ``"stable"`` for ``/cgi-bin/stable_token`` (the same token for
        every caller until it nears expiry) or ``"classic"`` for ``/cgi-bin/token``.
    :param retries: extra attempts after a network failure, with a short backoff.
    :param refresh_margin: refresh a token this many seconds before it expires; stable tokens
        rotate five minutes before expiry, hence 300.
    :param on_refresh: called after every token fetch (metrics).
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
        refresh_margin: float = 300.0,
        on_refresh: Callable[[], None] | None = None,
    ) -> None:
        if token_endpoint not in ("stable", "classic"):
            raise ValueError(f"token_endpoint must be stable or classic, not {token_endpoint!r}")
        self.appid = appid
        self._secret = appsecret
        self._store = store
        self._base_url = base_url.rstrip("/")
        self._stable = token_endpoint == "stable"
        self._transport = transport or urllib_transport(timeout)
        self._retries = retries
        self._margin = refresh_margin
        self._on_refresh = on_refresh
        self._cache_key = f"access-token:{appid}"

    # -- the access_token -----------------------------------------------------------------

    def access_token(self) -> str:
        """Return a valid access_token, fetching one only if no process has a fresh one."""
        cached = self._store.get(self._cache_key)
        if cached is not None:
            return cached.decode()
        return self._refresh(failed=None)

    def _refresh(self, failed: str | None) -> str:
        """Fetch a token under the lock, unless another process did while we waited.

        :param failed: the token WeChat just refused; a cached token equal to it is replaced,
            a different one (fresh from another process) is used as it is.
        """
        with self._store.lock(f"token-refresh:{self.appid}", ttl=15, wait=10) as held:
            cached = self._store.get(self._cache_key)
            if cached is not None and cached.decode() != failed:
                return cached.decode()
            if not held:
                raise APIUnavailable("another process is refreshing the access_token; timed out")
            token, expires_in = self._fetch_token(force=failed is not None)
            # A token living shorter than twice the margin is kept for half its life.
            ttl = expires_in - self._margin if expires_in > 2 * self._margin else expires_in / 2
            self._store.set(self._cache_key, token.encode(), ttl)
            return token

    def _fetch_token(self, *, force: bool) -> tuple[str, float]:
        if self._stable:
            path = "/cgi-bin/stable_token"
            body = {
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self._secret,
                "force_refresh": force,
            }
            answer = self._send("POST", path, body, query={})
        else:
            path = "/cgi-bin/token"
            query = {"grant_type": "client_credential", "appid": self.appid, "secret": self._secret}
            answer = self._send("GET", path, None, query=query)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise APIUnavailable(f"{path} answered without an access_token")
        if self._on_refresh is not None:
            self._on_refresh()
        logger.info("access_token refreshed through %s", path)
        return token, float(answer.get("expires_in", 7200))

    # -- calls ----------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Call an API path with the shared access_token; refresh and retry once if refused.

        :raises APIError: WeChat answered with a non-zero errcode.
        :raises APIUnavailable: no usable answer.
        """
        token = self.access_token()
        try:
            return self._send(method, path, body, query={"access_token": token})
        except APIError as e:
            if e.errcode not in TOKEN_ERRORS:
                raise
            logger.warning("%s refused the access_token (%s); refreshing once", path, e.errcode)
        token = self._refresh(failed=token)
        return self._send(method, path, body, query={"access_token": token})

    def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        query: Mapping[str, str],
    ) -> dict[str, Any]:
        url = f"{self._base_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        for attempt in range(self._retries + 1):
            try:
                answer = self._transport(method, url, body)
                break
            except (OSError, ValueError) as e:  # URLError and timeouts are OSErrors
                if attempt == self._retries:
                    raise APIUnavailable(
                        f"{path} unreachable after {attempt + 1} attempts: {type(e).__name__}"
                    ) from None
                time.sleep(0.2 * 2**attempt)
        errcode = int(answer.get("errcode", 0) or 0)
        if errcode:
            raise APIError(path, errcode, str(answer.get("errmsg", "")))
        return answer

    # -- customer-service messages (客服消息) ----------------------------------------------

    def send_custom(self, openid: str, msgtype: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send one customer-service message; the others below are shorthands for it."""
        body = {"touser": openid, "msgtype": msgtype, msgtype: dict(payload)}
        return self.call("POST", "/cgi-bin/message/custom/send", body)

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
        *,
        title: str,
        description: str,
        music_url: str,
        hq_music_url: str,
        thumb_media_id: str,
    ) -> dict[str, Any]:
        music = {
            "title": title,
            "description": description,
            "musicurl": music_url,
            "hqmusicurl": hq_music_url,
            "thumb_media_id": thumb_media_id,
        }
        return self.send_custom(openid, "music", music)

    def send_news(self, openid: str, articles: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """``articles``: dicts with title, description, url and picurl (WeChat shows one)."""
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
        """A message with tappable options ``(id, content)``; a tap arrives as a text message
        whose ``bizmsgmenuid`` is the option's id."""
        menu = {
            "head_content": head_content,
            "list": [{"id": option_id, "content": content} for option_id, content in options],
            "tail_content": tail_content,
        }
        return self.send_custom(openid, "msgmenu", menu)

    def send_miniprogrampage(
        self,
        openid: str,
        title: str,
        pagepath: str,
        thumb_media_id: str,
        appid: str | None = None,
    ) -> dict[str, Any]:
        """A Mini Program card; an Official Account names the Mini Program's ``appid``."""
        page = {"title": title, "pagepath": pagepath, "thumb_media_id": thumb_media_id}
        if appid is not None:
            page["appid"] = appid
        return self.send_custom(openid, "miniprogrampage", page)

    def send_link(
        self, openid: str, title: str, description: str, url: str, thumb_url: str
    ) -> dict[str, Any]:
        """A link card (Mini Program customer service)."""
        link = {"title": title, "description": description, "url": url, "thumb_url": thumb_url}
        return self.send_custom(openid, "link", link)

    def typing(self, openid: str, on: bool = True) -> dict[str, Any]:
        """Show (or stop showing) "typing…" to the user while a slow reply is prepared."""
        body = {"touser": openid, "command": "Typing" if on else "CancelTyping"}
        return self.call("POST", "/cgi-bin/message/custom/typing", body)
