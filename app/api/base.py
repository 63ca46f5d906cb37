"""What the sync and the async client share: options, the token's call, the URL, and the
rule for retrying an attempt (see :mod:`.client` for the guarantees)."""

from __future__ import annotations

import logging
import threading
import urllib.parse
from typing import Any, ClassVar

import httpx

from .. import metrics
from ..store import Store
from .call import API_BASE, MP_BASE, Answer, Call, Caller
from .errors import TOKEN_ERRORS, APIError, APIUnavailable
from .token import SharedAccessToken
from .transport import BadAnswer, never_sent, redact, redact_httpx_log, url_for

logger = logging.getLogger(__name__)


class ClientBase(Caller):
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
