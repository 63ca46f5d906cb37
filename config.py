"""Settings of the service, read from the environment and ``.env`` and checked at start-up.

The environment wins over ``.env`` (python-dotenv never overrides a variable that is already
set), the rule ``flask run`` follows too. Every invalid value stops start-up with a
:class:`ConfigError` that names the variable, says what was found and how to fix it, because a
wrong Token or EncodingAESKey otherwise shows up only as the console's "token 验证失败".
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TypeVar

from dotenv import dotenv_values

_T = TypeVar("_T")
_E = TypeVar("_E", bound=Enum)

#: Any 43 such characters decode (leniently) to the 32-byte AES key: PROTOCOL.md §1.
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")
_TOKEN = re.compile(r"[A-Za-z0-9]{3,32}")
_APPID = re.compile(r"wx[0-9a-f]{16}")
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
_HANDLERS = re.compile(r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?")


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it and says how to fix it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccountType(Enum):
    """Which kind of account the service answers for (WX_ACCOUNT_TYPE)."""

    #: 公众号: takes passive replies with content.
    OFFICIAL = "official"
    #: 小程序: takes only "success" or transfer_customer_service; content goes by the API.
    MINIPROGRAM = "miniprogram"


class SlowStrategy(Enum):
    """What to do with a handler still running at the deadline (WX_SLOW_STRATEGY)."""

    #: Let attempts 1 and 2 lapse so WeChat retries, answer from the retry (up to ~15 s);
    #: after the last attempt, deliver late.
    RETRY = "retry"
    #: Answer "success" at the first deadline and deliver the reply late.
    CUSTOMER_SERVICE = "customer_service"
    #: Answer "success" at the deadline and drop what the handler returns after it.
    OFF = "off"


class TokenEndpoint(Enum):
    """Where the access_token comes from (WX_TOKEN_ENDPOINT)."""

    #: /cgi-bin/stable_token: the same token for every caller until it nears expiry.
    STABLE = "stable"
    #: /cgi-bin/token: every call issues a new token and revokes the previous one.
    CLASSIC = "classic"


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with. Build it with :func:`load_settings`."""

    #: WX_TOKEN, the console's Token (令牌): 3-32 letters and digits.
    token: str
    #: WX_APPID, wx + 16 hex digits; required with an EncodingAESKey.
    appid: str = ""
    #: WX_AES_KEY, the console's EncodingAESKey (消息加解密密钥), 43 characters.
    aes_key: str = ""
    #: WX_APPSECRET, for the API (customer-service sending of late replies).
    appsecret: str = ""
    #: WX_PATH, the callback URL's path.
    path: str = "/wx"
    #: WX_HANDLERS, "module" or "module:attribute" naming the user's Router; "" for the demo.
    handlers: str = ""
    #: WX_ACCOUNT_TYPE.
    account_type: AccountType = AccountType.OFFICIAL
    #: WX_REQUIRE_ENCRYPTION: refuse plaintext pushes (403).
    require_encryption: bool = False
    #: WX_TIMESTAMP_TOLERANCE: seconds a signed timestamp may be off; 0 turns the check off.
    timestamp_tolerance: int = 300
    #: WX_MAX_BODY: largest accepted body in bytes; larger ones get 413.
    max_body: int = 64 * 1024
    #: WX_STORE_URL: the store shared by all workers (ledger, access_token, pending replies).
    store_url: str = "sqlite:///instance/wx-push.db"
    #: WX_DEADLINE: seconds after which an answer leaves, whatever the handler is doing.
    deadline: float = 4.5
    #: WX_SLOW_STRATEGY.
    slow_strategy: SlowStrategy = SlowStrategy.RETRY
    #: WX_LEDGER_TTL: seconds the ledger remembers a push (WeChat retries for ~15 s).
    ledger_ttl: int = 300
    #: WX_HANDLER_THREADS: handlers that may run at once per worker process, each on a native
    #: thread started on demand; a burst of slow handlers (an LLM) needs one each.
    handler_threads: int = 512
    #: WX_API_BASE: WeChat's API, or a proxy or fake of it.
    api_base: str = "https://api.weixin.qq.com"
    #: WX_TOKEN_ENDPOINT.
    token_endpoint: TokenEndpoint = TokenEndpoint.STABLE
    #: WX_LOG_FORMAT: "text" lines, or "json" objects one per line.
    log_format: str = "text"
    #: WX_LOG_CONTENT: put the user's OpenID and message text in push log lines (debugging).
    log_content: bool = False
    #: WX_METRICS: serve Prometheus metrics at /metrics.
    metrics: bool = True


#: The values .env.example ships with, which ``make run`` serves until there is a ``.env``.
#: They are public: whoever has read the repository can sign pushes with the Token and read or
#: forge encrypted ones with the key, so they must never stay in front of a real account.
DEMO_VALUES = {
    "WX_TOKEN": "ejab5tYH8IL99ghT",
    "WX_AES_KEY": "p6p4t0bbMbATykfwQSQMj4jA2qFCQiNv0oj731pzBx0",
    "WX_APPID": "wxf766086f114e3ee9",
}


def demo_warning(settings: Settings) -> str | None:
    """The warning to show while any public demo value of ``.env.example`` is in effect.

    It compares the values themselves, wherever they came from (the environment, ``.env``, a
    copy of the example), because a copied ``.env`` with one value left unchanged is the
    mistake to catch. It names settings, never their values.

    :return: the warning, naming the settings that still hold a demo value, or None.
    """
    current = {
        "WX_TOKEN": settings.token,
        "WX_AES_KEY": settings.aes_key,
        "WX_APPID": settings.appid,
        "WX_APPSECRET": settings.appsecret,
    }
    names = [name for name, value in DEMO_VALUES.items() if current[name] == value]
    if not names:
        return None
    if len(names) == 1:
        held = f"{names[0]} still holds the value"
    else:
        held = f"{', '.join(names[:-1])} and {names[-1]} still hold the values"
    return (
        f"PUBLIC DEMO VALUES: {held} published in .env.example. Anyone who has read it can"
        " forge pushes to this service and read its replies: put your account's own values"
        " in .env (`python -m app keygen` makes a Token and EncodingAESKey)."
    )


def load_settings(environ: Mapping[str, str] | None = None, *, dotenv: bool = True) -> Settings:
    """Read settings from ``environ`` (default ``os.environ``) over the ``.env`` file.

    :param environ: the variables to read; tests pass a dict.
    :param dotenv: read the file named by WX_DOTENV (default ``.env``) for variables the
        environment does not set.
    :raises ConfigError: a setting is missing or invalid.
    """
    env = dict(os.environ if environ is None else environ)
    if dotenv:
        path = env.get("WX_DOTENV", ".env")
        for name, value in dotenv_values(path).items():
            if value is not None:
                env.setdefault(name, value)
    return _build(env)


def _build(env: Mapping[str, str]) -> Settings:
    def get(name: str) -> str:
        return env.get(name, "").strip()

    token = get("WX_TOKEN")
    if not token:
        raise ConfigError(
            "WX_TOKEN is not set. Put the console's Token in .env (see .env.example),"
            " or run `python -m app keygen` for a new one."
        )
    if not _TOKEN.fullmatch(token):
        raise ConfigError(
            f"WX_TOKEN must be 3-32 letters and digits (got {len(token)} characters"
            f"{', some of them neither' if token.isascii() and not token.isalnum() else ''})."
            " The console accepts nothing else."
        )
    appid = get("WX_APPID")
    if appid and not _APPID.fullmatch(appid):
        raise ConfigError(
            f"WX_APPID must be 'wx' followed by 16 lowercase hex digits (got {appid[:24]!r})."
            " Copy it from the console's 开发 → 基本配置 page."
        )
    aes_key = get("WX_AES_KEY")
    if aes_key:
        if not _AES_KEY.fullmatch(aes_key):
            raise ConfigError(
                f"WX_AES_KEY must be 43 letters and digits (got {len(aes_key)} characters)."
                " Copy the EncodingAESKey from the console, or run `python -m app keygen`."
            )
        if not appid:
            raise ConfigError(
                "WX_APPID is required when WX_AES_KEY is set: encrypted pushes carry the AppID."
            )
    if get("WX_APPSECRET") and not appid:
        raise ConfigError("WX_APPID is required when WX_APPSECRET is set: the API needs both.")
    path = get("WX_PATH") or "/wx"
    if not _PATH.fullmatch(path):
        raise ConfigError(
            f"WX_PATH must start with '/' and not end with one, e.g. /wx (got {path[:40]!r})."
        )
    handlers = get("WX_HANDLERS")
    if handlers and not _HANDLERS.fullmatch(handlers):
        raise ConfigError(
            f"WX_HANDLERS must be 'module' or 'module:attribute', e.g. myhandlers:router"
            f" (got {handlers[:60]!r})."
        )
    require_encryption = _parse("WX_REQUIRE_ENCRYPTION", get, _bool, False)
    if require_encryption and not aes_key:
        raise ConfigError("WX_REQUIRE_ENCRYPTION is on but WX_AES_KEY is not set.")
    return Settings(
        token=token,
        appid=appid,
        aes_key=aes_key,
        appsecret=get("WX_APPSECRET"),
        path=path,
        handlers=handlers,
        account_type=_parse("WX_ACCOUNT_TYPE", get, _account_type, AccountType.OFFICIAL),
        require_encryption=require_encryption,
        timestamp_tolerance=_parse("WX_TIMESTAMP_TOLERANCE", get, _whole, 300),
        max_body=_parse("WX_MAX_BODY", get, _positive_int, 64 * 1024),
        store_url=_parse("WX_STORE_URL", get, _store_url, Settings.store_url),
        deadline=_parse("WX_DEADLINE", get, _deadline, Settings.deadline),
        slow_strategy=_parse("WX_SLOW_STRATEGY", get, _choice(SlowStrategy), SlowStrategy.RETRY),
        ledger_ttl=_parse("WX_LEDGER_TTL", get, _ledger_ttl, Settings.ledger_ttl),
        handler_threads=_parse("WX_HANDLER_THREADS", get, _positive_int, Settings.handler_threads),
        api_base=_parse("WX_API_BASE", get, _url, Settings.api_base),
        token_endpoint=_parse(
            "WX_TOKEN_ENDPOINT", get, _choice(TokenEndpoint), TokenEndpoint.STABLE
        ),
        log_format=_parse("WX_LOG_FORMAT", get, _log_format, "text"),
        log_content=_parse("WX_LOG_CONTENT", get, _bool, False),
        metrics=_parse("WX_METRICS", get, _bool, True),
    )


def _parse(name: str, get: Callable[[str], str], convert: Callable[[str], _T], default: _T) -> _T:
    raw = get(name)
    if not raw:
        return default
    try:
        return convert(raw)
    except ValueError as e:
        raise ConfigError(f"{name}={raw[:40]!r} is not valid: {e}") from None


def _account_type(raw: str) -> AccountType:
    try:
        return AccountType(raw.lower())
    except ValueError:
        raise ValueError("use official (公众号) or miniprogram (小程序)") from None


def _choice(enum: type[_E]) -> Callable[[str], _E]:
    def convert(raw: str) -> _E:
        try:
            return enum(raw.lower())
        except ValueError:
            allowed = " or ".join(str(member.value) for member in enum)
            raise ValueError(f"use {allowed}") from None

    return convert


def _log_format(raw: str) -> str:
    if raw.lower() not in ("text", "json"):
        raise ValueError("use text or json")
    return raw.lower()


def _store_url(raw: str) -> str:
    if not raw.startswith(("memory://", "sqlite:///", "redis://", "rediss://")):
        raise ValueError("use sqlite:///path/file.db, redis://host:6379/0 or memory://")
    return raw


def _url(raw: str) -> str:
    if not raw.startswith(("http://", "https://")):
        raise ValueError("use an http:// or https:// URL")
    return raw.rstrip("/")


def _deadline(raw: str) -> float:
    value = float(raw)
    if not 0.5 <= value < 5:
        raise ValueError("use seconds from 0.5 to under 5: WeChat gives up after 5 s")
    return value


def _ledger_ttl(raw: str) -> int:
    value = _whole(raw)
    if value < 30:
        raise ValueError("use at least 30 seconds: WeChat retries for about 15 s")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("use true or false")


def _whole(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError("use a whole number")
    return int(raw)


def _positive_int(raw: str) -> int:
    value = _whole(raw)
    if value <= 0:
        raise ValueError("must be more than 0")
    return value
