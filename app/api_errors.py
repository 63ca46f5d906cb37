"""What can go wrong when calling WeChat's server API, as exceptions that carry what was seen.

They live apart from :mod:`app.client` so that code which only reports failures (late delivery,
the CLI) can name them without the HTTP machinery, and so the client stays one sitting long.

The tree::

    WeChatAPIError                  base: the call did not succeed (.message)
    ├── APIError                    WeChat answered with a non-zero errcode (.errcode, .errmsg,
    │                               .path); .errcode is an ErrorCode member when it is a known one
    └── APIUnavailable              no usable answer: network failure after the retries, an
        │                           answer that is not a JSON object, a token answer without
        │                           an access_token
        └── TokenRefreshTimeout     another process held the refresh lock for too long and
                                    left no token in the cache

No message ever contains the AppSecret or an access_token: the client redacts both before it
builds one, because these messages end up in log lines.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Error codes of WeChat's API that the service acts on or explains (PROTOCOL.md §7).

    The names are ours (WeChat's docs give only numbers and Chinese text); an ``IntEnum``
    compares equal to the plain ``int`` in an answer, so ``e.errcode == 45015`` keeps working.
    """

    #: 系统繁忙: WeChat is busy; try again later.
    SYSTEM_BUSY = -1
    #: The AppSecret is wrong, or the access_token is invalid or no longer the latest.
    INVALID_CREDENTIAL = 40001
    #: The OpenID is not a user of this account.
    INVALID_OPENID = 40003
    #: The AppID is wrong.
    INVALID_APPID = 40013
    #: The access_token is malformed or unknown.
    INVALID_ACCESS_TOKEN = 40014
    #: The caller's IP is not in the console's IP whitelist (IP白名单).
    IP_NOT_WHITELISTED = 40164
    #: The access_token has expired.
    ACCESS_TOKEN_EXPIRED = 42001
    #: The daily quota of this API is used up.
    DAILY_QUOTA = 45009
    #: Called too often (stable_token: the per-minute quota, or force_refresh too soon).
    MINUTE_QUOTA = 45011
    #: The customer-service window after the user's last message has passed.
    REPLY_WINDOW_PASSED = 45015
    #: More customer-service messages than the window allows.
    TOO_MANY_REPLIES = 45047
    #: The request body is not valid JSON, or lacks a required field.
    BAD_JSON = 47001
    #: The account has no permission for this API (e.g. not verified).
    NO_PERMISSION = 48001


#: Answers that mean "this access_token is no good": refresh it and try once more.
TOKEN_ERRORS = frozenset(
    {ErrorCode.INVALID_CREDENTIAL, ErrorCode.INVALID_ACCESS_TOKEN, ErrorCode.ACCESS_TOKEN_EXPIRED}
)


class WeChatAPIError(Exception):
    """Base class: an API call did not succeed. Catch this to handle every failure at once."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: The whole explanation, safe to log.
        self.message = message


class APIError(WeChatAPIError):
    """WeChat answered with a non-zero ``errcode``.

    :param errcode: the code from the answer.
    :param errmsg: WeChat's text from the answer (secrets already redacted by the caller).
    :param path: the API path that answered, e.g. ``/cgi-bin/message/custom/send``; it names
        the endpoint without its query, which would carry the access_token.
    """

    def __init__(self, errcode: int, errmsg: str, *, path: str = "") -> None:
        known = errcode in ErrorCode._value2member_map_
        name = f" ({ErrorCode(errcode).name})" if known else ""
        where = f"{path} answered " if path else "WeChat answered "
        super().__init__(f"{where}errcode {errcode}{name}: {errmsg}")
        #: WeChat's error code; an :class:`ErrorCode` member when it is one we know.
        self.errcode: int = ErrorCode(errcode) if known else errcode
        #: WeChat's own text, which often ends with a request id ("rid: ...") for support.
        self.errmsg = errmsg
        #: The API path that answered.
        self.path = path


class APIUnavailable(WeChatAPIError):
    """No usable answer from the API: network trouble after the retries, or a broken proxy."""


class TokenRefreshTimeout(APIUnavailable):
    """The refresh lock stayed taken past the wait and no other process cached a token.

    Usually the process holding the lock is itself stuck on a slow token endpoint; the lock
    expires on its own, so a later call can succeed.
    """
