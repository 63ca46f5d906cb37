"""Settings of the service, read from the environment and ``.env`` and checked at start-up.

The environment wins over ``.env`` (python-dotenv never overrides a variable that is already
set), the rule ``flask run`` follows too. Every invalid value stops start-up with a
:class:`ConfigError` that names the variable, says what was found and how to fix it, because a
wrong Token or EncodingAESKey otherwise shows up only as the console's "token 验证失败".

One process can serve several accounts. The unprefixed settings (WX_TOKEN, WX_PATH, ...)
configure the default account, as they always did; WX_ACCOUNTS names more, each configured by
the same settings prefixed with its name (WX_SHOP_TOKEN for ``shop``) or by a table of its own
in the TOML or JSON file WX_ACCOUNTS_FILE names, the environment winning over the file.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from dotenv import dotenv_values

_T = TypeVar("_T")
_E = TypeVar("_E", bound=Enum)
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Any 43 such characters decode (leniently) to the 32-byte AES key: PROTOCOL.md §1.
_AES_KEY = re.compile(r"[A-Za-z0-9]{43}")
_TOKEN = re.compile(r"[A-Za-z0-9]{3,32}")
_APPID = re.compile(r"wx[0-9a-f]{16}")
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
_HANDLERS = re.compile(r"[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?")
#: An account's name becomes part of variable names (WX_SHOP_TOKEN), its path and store keys.
_ACCOUNT_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")

#: The name of the account the unprefixed settings (WX_TOKEN, WX_PATH, ...) configure.
DEFAULT_ACCOUNT = "default"


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
class AccountSettings:
    """One more account served beside the default one, at a path of its own (WX_ACCOUNTS).

    It holds what an account has of its own; the rest (the store, the deadline, logging, ...)
    belongs to the process and comes from the :class:`Settings` that lists the account.
    :meth:`Settings.each_account` joins the two.
    """

    #: Lowercase letters, digits and _: it names the account in variables (WX_SHOP_TOKEN), log
    #: lines, metrics and store keys.
    name: str
    #: The console's Token: WX_<NAME>_TOKEN, or ``token`` in WX_ACCOUNTS_FILE.
    token: str
    appid: str = ""
    aes_key: str = ""
    appsecret: str = ""
    #: "" for /wx/<name>.
    path: str = ""
    handlers: str = ""
    account_type: AccountType = AccountType.OFFICIAL
    require_encryption: bool = False
    slow_strategy: SlowStrategy = SlowStrategy.RETRY
    token_endpoint: TokenEndpoint = TokenEndpoint.STABLE


@dataclass(frozen=True)
class Settings:
    """Everything the service is configured with. Build it with :func:`load_settings`.

    Its account fields (token ... token_endpoint) are the default account's; :attr:`accounts`
    lists the others, and :meth:`each_account` gives every account's settings whole.
    """

    #: WX_TOKEN, the console's Token (令牌): 3-32 letters and digits; "" when no default account
    #: is served, only those of WX_ACCOUNTS.
    token: str = ""
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
    #: WX_TRUSTED_PROXIES: the proxies whose ``X-Real-IP`` names the client in refusal log
    #: lines: loopback (nginx on this host) unless a container setup names its network.
    trusted_proxies: tuple[IPNetwork, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    #: WX_STORE_URL: the store shared by all workers (ledger, access_token, pending replies).
    store_url: str = "sqlite:///instance/wx-push.db"
    #: WX_DEADLINE: seconds after which an answer leaves, whatever the handler is doing.
    deadline: float = 4.5
    #: WX_SLOW_STRATEGY.
    slow_strategy: SlowStrategy = SlowStrategy.RETRY
    #: WX_LEDGER_TTL: seconds the ledger remembers a push (WeChat retries for ~15 s).
    ledger_ttl: int = 300
    #: WX_HANDLER_THREADS: handlers that may run at once per account and worker process, each
    #: on a native thread started on demand; a burst of slow handlers (an LLM) needs one each.
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
    #: WX_SESSION_TTL: seconds a user's session (ctx.session) lives after its last change.
    session_ttl: int = 7 * 24 * 3600
    #: The account's name in log lines, metrics and store keys.
    name: str = DEFAULT_ACCOUNT
    #: WX_ACCOUNTS and WX_ACCOUNTS_FILE: the accounts served beside the default one.
    accounts: tuple[AccountSettings, ...] = ()

    def each_account(self) -> tuple[Settings, ...]:
        """The whole settings of every account served: the default one (when it has a Token),
        then each of :attr:`accounts`, with the process's settings and none of ``accounts``.

        :raises ConfigError: there is no account, or two share a name or a path.
        """
        served = [dataclasses.replace(self, accounts=())] if self.token else []
        for account in self.accounts:
            own = {field.name: getattr(account, field.name) for field in _ACCOUNT_FIELDS}
            path = account.path or f"/wx/{account.name}"
            served.append(dataclasses.replace(self, **own, path=path, accounts=()))
        if not served:
            raise ConfigError(
                "No account is configured: set WX_TOKEN, or name accounts in WX_ACCOUNTS or"
                " WX_ACCOUNTS_FILE."
            )
        names: dict[str, Settings] = {}
        paths: dict[str, Settings] = {}
        for settings in served:
            if not _ACCOUNT_NAME.fullmatch(settings.name):
                raise ConfigError(f"Settings: {_bad_name(settings.name)}")
            if settings.name in names:
                raise ConfigError(f"Two accounts are named {settings.name!r}; names must differ.")
            if settings.path in paths:
                raise ConfigError(
                    f"Accounts {paths[settings.path].name!r} and {settings.name!r} both have the"
                    f" path {settings.path}; give each a path of its own"
                    f" (WX_{settings.name.upper()}_PATH)."
                )
            names[settings.name] = paths[settings.path] = settings
        return tuple(served)

    def account(self, name: str | None = None) -> Settings:
        """The whole settings of the account called ``name``.

        :param name: None for the default account, or for the only one served.
        :raises ConfigError: no account has that name, or None leaves the choice open.
        """
        served = {settings.name: settings for settings in self.each_account()}
        if name is None:
            if DEFAULT_ACCOUNT in served or len(served) == 1:
                return served.get(DEFAULT_ACCOUNT) or next(iter(served.values()))
            raise ConfigError(f"Several accounts are served: {', '.join(served)}.")
        if name not in served:
            raise ConfigError(
                f"There is no account {name!r}; the accounts served are {', '.join(served)}."
            )
        return served[name]


#: What an account has of its own, as opposed to the process's settings.
_ACCOUNT_FIELDS = tuple(f for f in dataclasses.fields(AccountSettings) if f.name != "path")


def _bad_name(name: str) -> str:
    if name == DEFAULT_ACCOUNT:
        return (
            f"{DEFAULT_ACCOUNT!r} is the name of the account WX_TOKEN and the other unprefixed"
            " settings configure; give this one another name."
        )
    return (
        f"account name {name[:40]!r} is not valid: use lowercase letters, digits and _,"
        " starting with a letter, at most 32 (it becomes part of variable names such as"
        " WX_<NAME>_TOKEN)."
    )


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
    served: list[tuple[str, Settings | AccountSettings]] = []
    if settings.token:
        served.append(("WX_", settings))
    served += [(f"WX_{account.name.upper()}_", account) for account in settings.accounts]
    names = [
        prefix + name[3:]
        for prefix, account in served
        for name, value in DEMO_VALUES.items()
        if getattr(account, name[3:].lower()) == value
    ]
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
    top = _Source(env)
    named = _named_accounts(top)
    if top.get("WX_TOKEN") or not named:
        own = _account_values(top)
    else:
        for name in ("WX_APPID", "WX_AES_KEY", "WX_APPSECRET"):
            if top.get(name):
                raise ConfigError(
                    f"{name} is set but WX_TOKEN is not: the default account needs its Token."
                    f" Set WX_TOKEN, or leave {name} empty when only WX_ACCOUNTS are served."
                )
        own = {}
    accounts = []
    for source in named:
        try:
            accounts.append(AccountSettings(name=source.name, **_account_values(source)))
        except ConfigError as e:
            raise ConfigError(f"account {source.name!r}: {e.message}") from None
    settings = Settings(
        **own,
        timestamp_tolerance=_parse("WX_TIMESTAMP_TOLERANCE", top, _whole, 300),
        max_body=_parse("WX_MAX_BODY", top, _positive_int, 64 * 1024),
        trusted_proxies=_parse("WX_TRUSTED_PROXIES", top, _networks, Settings.trusted_proxies),
        store_url=_parse("WX_STORE_URL", top, _store_url, Settings.store_url),
        deadline=_parse("WX_DEADLINE", top, _deadline, Settings.deadline),
        ledger_ttl=_parse("WX_LEDGER_TTL", top, _ledger_ttl, Settings.ledger_ttl),
        handler_threads=_parse("WX_HANDLER_THREADS", top, _positive_int, Settings.handler_threads),
        api_base=_parse("WX_API_BASE", top, _url, Settings.api_base),
        log_format=_parse("WX_LOG_FORMAT", top, _log_format, "text"),
        log_content=_parse("WX_LOG_CONTENT", top, _bool, False),
        metrics=_parse("WX_METRICS", top, _bool, True),
        session_ttl=_parse("WX_SESSION_TTL", top, _positive_int, Settings.session_ttl),
        accounts=tuple(accounts),
    )
    settings.each_account()  # two accounts on one path
    return settings


def _account_values(source: _Source) -> dict[str, Any]:
    """Read and check the settings an account has of its own, named as ``source`` names them."""
    get, label = source.get, source.label
    token = get("WX_TOKEN")
    if not token:
        fix = "Put the console's Token in .env (see .env.example)" if source.default else "Set it"
        raise ConfigError(
            f"{label('WX_TOKEN')} is not set. {fix}, or run `python -m app keygen` for a new one."
        )
    if not _TOKEN.fullmatch(token):
        raise ConfigError(
            f"{label('WX_TOKEN')} must be 3-32 letters and digits (got {len(token)} characters"
            f"{', some of them neither' if token.isascii() and not token.isalnum() else ''})."
            " The console accepts nothing else."
        )
    appid = get("WX_APPID")
    if appid and not _APPID.fullmatch(appid):
        raise ConfigError(
            f"{label('WX_APPID')} must be 'wx' followed by 16 lowercase hex digits"
            f" (got {appid[:24]!r}). Copy it from the console's 开发 → 基本配置 page."
        )
    aes_key = get("WX_AES_KEY")
    if aes_key:
        if not _AES_KEY.fullmatch(aes_key):
            raise ConfigError(
                f"{label('WX_AES_KEY')} must be 43 letters and digits (got {len(aes_key)}"
                " characters). Copy the EncodingAESKey from the console, or run"
                " `python -m app keygen`."
            )
        if not appid:
            raise ConfigError(
                f"{label('WX_APPID')} is required when {label('WX_AES_KEY')} is set:"
                " encrypted pushes carry the AppID."
            )
    if get("WX_APPSECRET") and not appid:
        raise ConfigError(
            f"{label('WX_APPID')} is required when {label('WX_APPSECRET')} is set:"
            " the API needs both."
        )
    path = get("WX_PATH") or ("/wx" if source.default else f"/wx/{source.name}")
    if not _PATH.fullmatch(path):
        raise ConfigError(
            f"{label('WX_PATH')} must start with '/' and not end with one, e.g. /wx"
            f" (got {path[:40]!r})."
        )
    handlers = get("WX_HANDLERS")
    if handlers and not _HANDLERS.fullmatch(handlers):
        raise ConfigError(
            f"{label('WX_HANDLERS')} must be 'module' or 'module:attribute', e.g."
            f" myhandlers:router (got {handlers[:60]!r})."
        )
    require_encryption = _parse("WX_REQUIRE_ENCRYPTION", source, _bool, False)
    if require_encryption and not aes_key:
        raise ConfigError(
            f"{label('WX_REQUIRE_ENCRYPTION')} is on but {label('WX_AES_KEY')} is not set."
        )
    return {
        "token": token,
        "appid": appid,
        "aes_key": aes_key,
        "appsecret": get("WX_APPSECRET"),
        "path": path,
        "handlers": handlers,
        "account_type": _parse("WX_ACCOUNT_TYPE", source, _account_type, AccountType.OFFICIAL),
        "require_encryption": require_encryption,
        "slow_strategy": _parse(
            "WX_SLOW_STRATEGY", source, _choice(SlowStrategy), SlowStrategy.RETRY
        ),
        "token_endpoint": _parse(
            "WX_TOKEN_ENDPOINT", source, _choice(TokenEndpoint), TokenEndpoint.STABLE
        ),
    }


#: The settings an account has of its own, by their unprefixed names; another account's are
#: WX_<NAME>_TOKEN and so on, or ``token`` ... in its table of WX_ACCOUNTS_FILE.
_ACCOUNT_SETTINGS = (
    "WX_TOKEN",
    "WX_APPID",
    "WX_AES_KEY",
    "WX_APPSECRET",
    "WX_PATH",
    "WX_HANDLERS",
    "WX_ACCOUNT_TYPE",
    "WX_REQUIRE_ENCRYPTION",
    "WX_SLOW_STRATEGY",
    "WX_TOKEN_ENDPOINT",
)
#: The unprefixed ones that serve every account that does not set its own: how the service
#: behaves, as opposed to who the account is.
_INHERITED = ("WX_HANDLERS", "WX_REQUIRE_ENCRYPTION", "WX_SLOW_STRATEGY", "WX_TOKEN_ENDPOINT")


class _Source:
    """Where one account's settings are read, and what an error message calls each of them.

    The default account reads the unprefixed variables. Another reads WX_<NAME>_..., then its
    table of WX_ACCOUNTS_FILE, then, for the settings of :data:`_INHERITED`, the unprefixed
    variable. The process's own settings are read from the default source.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        name: str = DEFAULT_ACCOUNT,
        table: Mapping[str, str] | None = None,
        file: str = "",
    ) -> None:
        self.env = env
        self.name = name
        self.default = name == DEFAULT_ACCOUNT
        self._table = table
        self._file = file

    def get(self, name: str) -> str:
        """The value of the setting ``name`` (an unprefixed variable name), or ""."""
        return self._find(name)[0]

    def label(self, name: str) -> str:
        """What to call the setting ``name`` in a message: where its value came from, or where
        the account would set it."""
        return self._find(name)[1]

    def _find(self, name: str) -> tuple[str, str]:
        own = name if self.default else f"WX_{self.name.upper()}_{name[3:]}"
        value = self.env.get(own, "").strip()
        if value or self.default:
            return value, own
        in_file = f"{self._file} [{self.name}] {name[3:].lower()}"
        if self._table is not None and name[3:].lower() in self._table:
            return self._table[name[3:].lower()].strip(), in_file
        inherited = self.env.get(name, "").strip() if name in _INHERITED else ""
        if inherited:
            return inherited, name
        return "", own if self._table is None else in_file


def _named_accounts(top: _Source) -> list[_Source]:
    """The accounts of WX_ACCOUNTS, then those only WX_ACCOUNTS_FILE has."""
    listed = [name for name in re.split(r"[\s,]+", top.get("WX_ACCOUNTS")) if name]
    for index, name in enumerate(listed):
        if not _ACCOUNT_NAME.fullmatch(name) or name == DEFAULT_ACCOUNT:
            raise ConfigError(f"WX_ACCOUNTS: {_bad_name(name)}")
        if name in listed[:index]:
            raise ConfigError(f"WX_ACCOUNTS names {name!r} twice.")
    file = top.get("WX_ACCOUNTS_FILE")
    tables = _read_accounts_file(file) if file else {}
    names = listed + [name for name in tables if name not in listed]
    return [_Source(top.env, name, tables.get(name), file) for name in names]


def _read_accounts_file(path: str) -> dict[str, dict[str, str]]:
    """The tables of WX_ACCOUNTS_FILE: TOML (JSON when the name ends in .json), one per account.

    ::

        [shop]
        token = "shopToken2026"
        appid = "wx1a2b3c4d5e6f7a8b"
    """
    where = f"WX_ACCOUNTS_FILE={path}"
    kind = "JSON" if path.lower().endswith(".json") else "TOML"
    try:
        with open(path, "rb") as file:
            raw = file.read()
    except OSError as e:
        raise ConfigError(
            f"{where} cannot be read ({e.strerror}). Name it relative to the working directory"
            f" ({os.getcwd()}) or absolutely."
        ) from None
    try:
        data = json.loads(raw) if kind == "JSON" else tomllib.loads(raw.decode())
    except ValueError as e:  # TOMLDecodeError, JSONDecodeError and UnicodeDecodeError alike
        raise ConfigError(f"{where} is not valid {kind}: {e}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold one table per account, e.g. [shop].")
    keys = {name[3:].lower() for name in _ACCOUNT_SETTINGS}
    tables: dict[str, dict[str, str]] = {}
    for account, table in data.items():
        if not _ACCOUNT_NAME.fullmatch(account) or account == DEFAULT_ACCOUNT:
            raise ConfigError(f"{where}: {_bad_name(account)}")
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{account}] must be a table of settings, e.g. token.")
        tables[account] = {}
        for key, value in table.items():
            if key not in keys:
                raise ConfigError(
                    f"account {account!r}: {where}: [{account}] has no setting {key[:40]!r};"
                    f" the settings are {', '.join(sorted(keys))}."
                )
            if isinstance(value, bool):
                value = "true" if value else "false"
            if not isinstance(value, str):
                raise ConfigError(
                    f"account {account!r}: {where}: [{account}] {key} must be a string"
                    f" (got {type(value).__name__})."
                )
            tables[account][key] = value
    return tables


def _parse(name: str, source: _Source, convert: Callable[[str], _T], default: _T) -> _T:
    raw = source.get(name)
    if not raw:
        return default
    try:
        return convert(raw)
    except ValueError as e:
        raise ConfigError(f"{source.label(name)}={raw[:40]!r} is not valid: {e}") from None


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


def _networks(raw: str) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in raw.split(","))
    except ValueError:
        raise ValueError(
            "use addresses or networks separated by commas, e.g. 127.0.0.1,172.16.0.0/12"
        ) from None


def _whole(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()):
        raise ValueError("use a whole number")
    return int(raw)


def _positive_int(raw: str) -> int:
    value = _whole(raw)
    if value <= 0:
        raise ValueError("must be more than 0")
    return value
