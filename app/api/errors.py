"""What can go wrong when calling WeChat's server API, as exceptions that carry what was seen.

They live apart from the client so that code which only reports failures (late delivery, the
CLI, a handler) can name them without the HTTP machinery.

The tree::

    WeChatAPIError                  base: the call did not succeed (.message)
    ├── APIError                    WeChat answered with a non-zero errcode (.errcode, .errmsg,
    │   │                           .path); .errcode is an ErrorCode member when it is known
    │   ├── SystemBusy              -1, -1000: try again later
    │   ├── InvalidOpenID           40003: not a user of this account
    │   ├── InvalidMediaID          40007: unknown or expired media_id (they live 3 days)
    │   ├── InvalidTemplateID       40037
    │   ├── IPNotWhitelisted        40164, 61004: add this server's IP in the console
    │   ├── NotFollowing            43004: the user does not follow the account
    │   ├── SubscriptionRefused     43101: refused, or no subscribe-message grant left
    │   ├── QuotaReached            the API's quota is used up
    │   │   ├── DailyQuotaReached   45009
    │   │   └── MinuteQuotaReached  45011
    │   ├── ReplyWindowPassed       45015: outside the 48 h window, or the user unfollowed
    │   ├── TooManyReplies          45047: the window's allowance of messages is used up
    │   ├── NoMenu                  46003: no menu was made through the API
    │   ├── ArgumentInvalid         47003: errmsg names the field (data.thing1.value)
    │   └── Unauthorized            48001: the account lacks this API (e.g. not verified)
    └── APIUnavailable              no usable answer: network failure after the retries, an
        │                           answer that is not WeChat's (HTTP error, not JSON), a token
        │                           answer without an access_token
        └── TokenRefreshTimeout     another process held the refresh lock for too long and
                                    left no token in the cache

:func:`api_error` picks the class from the errcode, so ``except ReplyWindowPassed`` and
``e.errcode == 45015`` say the same thing. No message ever contains the AppSecret or an
access_token: the client redacts both before it builds one, because these messages end up in
log lines.
"""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar


class ErrorCode(IntEnum):
    """Error codes of WeChat's API that the service acts on or explains (API.md §0, §2-§9).

    The names are ours (WeChat's docs give only numbers and Chinese text); an ``IntEnum``
    compares equal to the plain ``int`` in an answer, so ``e.errcode == 45015`` keeps working.
    """

    #: 系统错误, seen on the token endpoint; treated like SYSTEM_BUSY.
    SYSTEM_ERROR = -1000
    #: 系统繁忙: WeChat is busy; try again later.
    SYSTEM_BUSY = -1
    #: The AppSecret is wrong, or the access_token is invalid or no longer the latest.
    INVALID_CREDENTIAL = 40001
    #: The OpenID is not a user of this account.
    INVALID_OPENID = 40003
    #: The media_id is unknown or expired.
    INVALID_MEDIA_ID = 40007
    #: The AppID is wrong.
    INVALID_APPID = 40013
    #: The access_token is malformed or unknown.
    INVALID_ACCESS_TOKEN = 40014
    #: The template_id is unknown (or a subscribe template sent as a template message).
    INVALID_TEMPLATE_ID = 40037
    #: A required parameter is missing.
    MISSING_PARAMETER = 40101
    #: The caller's IP is not in the console's IP whitelist (IP白名单).
    IP_NOT_WHITELISTED = 40164
    #: The access_token has expired.
    ACCESS_TOKEN_EXPIRED = 42001
    #: The user does not follow the account.
    NOT_FOLLOWING = 43004
    #: The user refused the subscribe message, or has no grant left for it.
    SUBSCRIPTION_REFUSED = 43101
    #: The content is too long.
    CONTENT_TOO_LONG = 45002
    #: The daily quota of this API is used up.
    DAILY_QUOTA = 45009
    #: Called too often (stable_token: the per-minute quota, or force_refresh too soon).
    MINUTE_QUOTA = 45011
    #: The customer-service window after the user's last message has passed.
    REPLY_WINDOW_PASSED = 45015
    #: More customer-service messages than the window allows.
    TOO_MANY_REPLIES = 45047
    #: No menu was created through the API.
    NO_MENU = 46003
    #: The request body is not valid JSON, or lacks a required field.
    BAD_JSON = 47001
    #: A field's value is invalid; errmsg names it.
    ARGUMENT_INVALID = 47003
    #: The account has no permission for this API (e.g. not verified).
    NO_PERMISSION = 48001
    #: The IP is not whitelisted, as the newer developer guide numbers it.
    IP_NOT_WHITELISTED_NEW = 61004


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

    Subclasses stand for the codes a caller branches on; :func:`api_error` picks one.

    :param errcode: the code from the answer.
    :param errmsg: WeChat's text from the answer (secrets already redacted by the caller).
    :param path: the API path that answered, e.g. ``/cgi-bin/message/custom/send``; it names
        the endpoint without its query, which would carry the access_token.
    """

    #: The errcodes this class stands for.
    errcodes: ClassVar[frozenset[int]] = frozenset()
    _by_errcode: ClassVar[dict[int, type[APIError]]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        for errcode in cls.errcodes:
            APIError._by_errcode[errcode] = cls

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


def api_error(errcode: int, errmsg: str, *, path: str = "") -> APIError:
    """The :class:`APIError` subclass for ``errcode`` (plain :class:`APIError` for others)."""
    return APIError._by_errcode.get(errcode, APIError)(errcode, errmsg, path=path)


class SystemBusy(APIError):
    """WeChat is busy. Repeating a read is fine; whether a refused send was delivered is not
    documented, so the client repeats only calls that are harmless to repeat."""

    errcodes = frozenset({ErrorCode.SYSTEM_BUSY, ErrorCode.SYSTEM_ERROR})


class InvalidOpenID(APIError):
    """The OpenID is empty, malformed or belongs to another account (OpenIDs are per account)."""

    errcodes = frozenset({ErrorCode.INVALID_OPENID})


class InvalidMediaID(APIError):
    """The media_id is unknown, or expired: temporary media live 3 days after upload."""

    errcodes = frozenset({ErrorCode.INVALID_MEDIA_ID})


class InvalidTemplateID(APIError):
    """The template_id is not one of the account's templates."""

    errcodes = frozenset({ErrorCode.INVALID_TEMPLATE_ID})


class IPNotWhitelisted(APIError):
    """This server's IP is not in the console's IP whitelist (IP白名单); errmsg shows the IP
    WeChat saw. Add it there: nothing else helps."""

    errcodes = frozenset({ErrorCode.IP_NOT_WHITELISTED, ErrorCode.IP_NOT_WHITELISTED_NEW})


class NotFollowing(APIError):
    """The user does not follow (or has unfollowed) the account."""

    errcodes = frozenset({ErrorCode.NOT_FOLLOWING})


class SubscriptionRefused(APIError):
    """The user refused this subscribe message, or used up a one-time grant: wait until the
    user accepts it again."""

    errcodes = frozenset({ErrorCode.SUBSCRIPTION_REFUSED})


class QuotaReached(APIError):
    """A call quota is used up; the subclass says which."""


class DailyQuotaReached(QuotaReached):
    """The API's daily quota is used up; it resets at midnight (Beijing time), or the console
    (or ``/cgi-bin/clear_quota``, 10 times a month) clears it."""

    errcodes = frozenset({ErrorCode.DAILY_QUOTA})


class MinuteQuotaReached(QuotaReached):
    """Too many calls this minute; try again in the next one."""

    errcodes = frozenset({ErrorCode.MINUTE_QUOTA})


class ReplyWindowPassed(APIError):
    """No customer-service message is allowed now: the window opened by the user's last
    action (48 h after a message, 1 min after a menu click, a follow or a scan) has passed,
    or the user unfollowed."""

    errcodes = frozenset({ErrorCode.REPLY_WINDOW_PASSED})


class TooManyReplies(APIError):
    """The window's allowance is used up (5 messages per user message, 3 per click, follow
    or scan); the next user action opens a new one."""

    errcodes = frozenset({ErrorCode.TOO_MANY_REPLIES})


class NoMenu(APIError):
    """The account has no menu made through the API."""

    errcodes = frozenset({ErrorCode.NO_MENU})


class ArgumentInvalid(APIError):
    """A field's value was refused; ``errmsg`` names it, e.g. ``data.phrase4.value invalid``."""

    errcodes = frozenset({ErrorCode.ARGUMENT_INVALID})


class Unauthorized(APIError):
    """The account has no permission for this API (unverified, wrong account type, or the
    feature is not enabled in the console)."""

    errcodes = frozenset({ErrorCode.NO_PERMISSION})


class APIUnavailable(WeChatAPIError):
    """No usable answer from the API: network trouble after the retries, or a broken proxy."""


class TokenRefreshTimeout(APIUnavailable):
    """The refresh lock stayed taken past the wait and no other process cached a token.

    Usually the process holding the lock is itself stuck on a slow token endpoint; the lock
    expires on its own, so a later call can succeed.
    """
