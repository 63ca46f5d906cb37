"""``python -m app …`` (also ``flask --app wsgi wx …``): commands for the people who run it.

``keygen`` makes console values, ``check`` says what to paste and probes a running server,
``simulate`` plays WeChat against any URL, ``info`` prints the console values at start-up,
``menu`` and ``qrcode`` call WeChat's API for the account. Commands read the settings
themselves (environment over ``.env`` in the working directory), so ``keygen`` works before
anything is configured and a bad setting is one clear line, not a traceback; ``info`` and
``check`` import the handlers too, so that ``make run`` stops on a bad ``WX_HANDLERS`` with that
one line before gunicorn starts.

Where several accounts are served (WX_ACCOUNTS), ``--account NAME`` chooses one; without it
``info`` and ``check`` cover every account, and the others use the default account, or the only
one.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from config import (
    DEFAULT_ACCOUNT,
    AccountType,
    ConfigError,
    Settings,
    demo_warning,
    load_settings,
)

from ..api import WeChatAPI, WeChatAPIError
from ..router import HandlerLoadError, load_router
from ..store import StoreError, open_store
from ..testing import PushBuilder
from ..wechat import codec
from ..wechat.codec import BodyFormat
from ..wechat.envelope import Mode
from .probe import probe
from .simulator import SAMPLES, WECHAT_RETRY_INTERVAL, deliver, push_fields

_ALPHABET = string.ascii_letters + string.digits


#: What ``make run`` serves until there is a ``.env``; the commands read the same file so that
#: ``simulate`` and ``check`` work against ``make run`` on the first try.
_DEMO_DOTENV = Path(".env.example")
#: Where ``make run`` listens unless PORT says otherwise (the Makefile reads the same variable).
_DEFAULT_PORT = 8000


def _settings() -> Settings:
    environ = dict(os.environ)
    if "WX_DOTENV" not in environ and not Path(".env").exists() and _DEMO_DOTENV.exists():
        click.echo(f"no .env here: using the demo values of {_DEMO_DOTENV}", err=True)
        environ["WX_DOTENV"] = str(_DEMO_DOTENV)
    try:
        return load_settings(environ)
    except ConfigError as e:
        click.echo(f"error: {e.message}", err=True)
        dotenv = Path(environ.get("WX_DOTENV", ".env"))
        if "WX_TOKEN" not in environ and not dotenv.exists():
            click.echo(
                f"(there is no {dotenv.absolute()}: run the command in the directory that"
                " holds your .env, or name the file in WX_DOTENV)",
                err=True,
            )
        sys.exit(2)


def _account(settings: Settings, name: str | None) -> Settings:
    """The settings of the account ``--account`` names (by default the default account, or the
    only one)."""
    try:
        return settings.account(name)
    except ConfigError as e:
        click.echo(f"error: {e.message} Choose one with --account NAME.", err=True)
        sys.exit(2)


def _served(settings: Settings, name: str | None) -> tuple[Settings, ...]:
    """The account ``--account`` names, or every account served; their handlers imported."""
    served = (_account(settings, name),) if name else settings.each_account()
    for account in served:
        _load_handlers(account)
    return served


def _load_handlers(settings: Settings) -> None:
    """Import WX_HANDLERS as the server will, so a mistake stops here in one line."""
    if not settings.handlers:
        return
    try:
        load_router(settings.handlers)
    except HandlerLoadError as e:
        click.echo(f"error: {_handlers_label(settings)}={settings.handlers}: {e.message}", err=True)
        sys.exit(2)


def _handlers_label(settings: Settings) -> str:
    if settings.name == DEFAULT_ACCOUNT:
        return "WX_HANDLERS"
    return f"account {settings.name!r}: handlers"


def _described(settings: Settings) -> str:
    """``official account``, or ``official account 'shop'`` for an account of WX_ACCOUNTS."""
    named = "" if settings.name == DEFAULT_ACCOUNT else f" {settings.name!r}"
    return f"{settings.account_type.value} account{named}"


#: ``--account NAME`` on the commands that act for one account.
account_option = click.option(
    "--account",
    "account_name",
    metavar="NAME",
    help="An account of WX_ACCOUNTS; default: the default account (WX_TOKEN), or the only one.",
)


def _local_url(settings: Settings) -> str:
    """The URL ``make run`` serves in this shell: loopback, PORT (default 8000), WX_PATH."""
    port = os.environ.get("PORT", str(_DEFAULT_PORT))
    if not (port.isascii() and port.isdigit()):
        click.echo(f"error: PORT={port[:20]!r} is not a port number; use e.g. 8000.", err=True)
        sys.exit(2)
    return f"http://127.0.0.1:{port}{settings.path}"


@click.group(help="Commands for the WeChat push service.")
def wx() -> None:
    """Group the service's commands under ``wx``, next to Flask's own."""


@wx.command("keygen")
def keygen() -> None:
    """Make a fresh Token and EncodingAESKey in the console's formats."""
    token = "".join(secrets.choice(_ALPHABET) for _ in range(32))
    aes_key = "".join(secrets.choice(_ALPHABET) for _ in range(43))
    click.echo(f"Token           {token}")
    click.echo(f"EncodingAESKey  {aes_key}")
    click.echo("\nFor .env (paste the same values into the console):")
    click.echo(f"WX_TOKEN={token}\nWX_AES_KEY={aes_key}")


def _console_values(settings: Settings) -> None:
    mode = "安全模式 safe (or 兼容模式 compatible)" if settings.aes_key else "明文模式 plaintext"
    miniprogram = settings.account_type is AccountType.MINIPROGRAM
    click.echo("Console → 开发 → 基本配置 → 服务器配置 (Mini Program: 开发管理 → 消息推送):")
    click.echo(f"  URL             https://<your domain>{settings.path}   (ports 80/443 only)")
    click.echo(f"  Token           {settings.token}")
    click.echo(f"  EncodingAESKey  {settings.aes_key or '(none: plaintext mode only)'}")
    click.echo(f"  Mode            {mode}")
    if miniprogram:
        click.echo("  Data format     XML or JSON (the service reads both)")
    variable = (
        "WX_HANDLERS"
        if settings.name == DEFAULT_ACCOUNT
        else f"WX_{settings.name.upper()}_HANDLERS"
    )
    click.echo(f"  Handlers        {settings.handlers or f'demo echo handlers (set {variable})'}")


@wx.command("info")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the server listens.")
@click.option(
    "--port", default=_DEFAULT_PORT, envvar="PORT", show_default=True, help="Default: $PORT."
)
@account_option
def info(host: str, port: int, account_name: str | None) -> None:
    """Print what to paste into the console's server configuration (服务器配置), per account."""
    for number, settings in enumerate(_served(_settings(), account_name)):
        if number:
            click.echo()
        where = f"http://{host}:{port}{settings.path}"
        click.echo(f"Serving the {_described(settings)} on {where}")
        _console_values(settings)


@wx.command("check")
@click.option("--url", help="A running server to probe; default http://127.0.0.1:$PORT + WX_PATH.")
@account_option
@click.option("--clock-offset", default=0.0, hidden=True, help="Seconds added when signing.")
def check(url: str | None, account_name: str | None, clock_offset: float) -> None:
    """Validate the settings, print the console values, probe a server with a handshake."""
    settings = _settings()
    served = _served(settings, account_name)
    if url and len(served) > 1:
        names = ", ".join(account.name for account in served)
        click.echo(
            f"error: --url is one account's URL; name that account with --account ({names}).",
            err=True,
        )
        sys.exit(2)
    if len(served) == 1:
        click.echo(f"Settings are valid ({_described(served[0])}).")
    else:
        names = ", ".join(account.name for account in served)
        click.echo(f"Settings are valid ({len(served)} accounts: {names}).")
    warning = demo_warning(settings)
    if warning:
        click.echo(f"warning: {warning}", err=True)
    failed = False
    for account in served:
        if len(served) > 1:
            click.echo(f"\n{_described(account).capitalize()}:")
        _console_values(account)
        target = url or _local_url(account)
        click.echo(f"\nProbing {target} with the console's handshake…")
        failed = _probe(target, account.token, clock_offset) or failed
    sys.exit(1 if failed else 0)


def _probe(target: str, token: str, clock_offset: float) -> bool:
    """Print what the handshake found at ``target``; True if anything failed."""
    failed = False
    for finding in probe(target, token, clock_offset=clock_offset):
        if finding.ok:
            click.echo(f"  ok    {finding.symptom}")
            continue
        failed = True
        click.echo(f"  FAIL  {finding.symptom}")
        click.echo(f"        cause: {finding.cause}")
        click.echo(f"        fix:   {finding.fix}")
    return failed


@wx.command("simulate")
@click.option("--url", help="Callback URL; default http://127.0.0.1:$PORT + WX_PATH.")
@click.option(
    "--type",
    "kind",
    default="text",
    show_default=True,
    type=click.Choice(sorted(SAMPLES, key=str.lower)),
    help="MsgType, or an event name for events.",
)
@click.option("--content", help="Text of a text message.")
@click.option("--key", help="EventKey of an event (menu key, qrscene_<scene>, ...).")
@click.option("--field", "extra", multiple=True, metavar="NAME=VALUE", help="Set any field.")
@click.option("--file", "body_file", type=click.File("rb"), help="Send a saved XML/JSON body.")
@click.option(
    "--mode", type=click.Choice([m.value for m in Mode]), help="Default: safe with a key."
)
@click.option("--format", "body_format", type=click.Choice(["xml", "json"]), default="xml")
@click.option("--from", "from_user", default="oSimulatedUser000000000000000", show_default=True)
@click.option("--retries", default=2, show_default=True, help="Retries when no answer comes.")
@click.option("--interval", default=WECHAT_RETRY_INTERVAL, show_default=True, help="Seconds.")
@click.option("--repeat", is_flag=True, help="Send every retry even after an answer.")
@click.option("--show-request", is_flag=True, help="Print the query and body sent.")
@account_option
def simulate(
    url: str | None,
    kind: str,
    content: str | None,
    key: str | None,
    extra: tuple[str, ...],
    body_file: Any,
    mode: str | None,
    body_format: str,
    from_user: str,
    retries: int,
    interval: float,
    repeat: bool,
    show_request: bool,
    account_name: str | None,
) -> None:
    """Send a push the way WeChat does and print the verified, decrypted answer."""
    settings = _account(_settings(), account_name)
    builder = PushBuilder(
        settings,
        mode=Mode(mode) if mode else None,
        body_format=BodyFormat(body_format),
        user=from_user,
    )
    overrides: dict[str, Any] = dict(_pair(item) for item in extra)
    if content is not None:
        overrides["Content"] = content
    if key is not None:
        overrides["EventKey"] = key
    if body_file is not None:
        saved = body_file.read()
        fields = {**codec.parse(saved, codec.detect_format(saved)), **overrides}
    else:
        fields = builder.complete(push_fields(kind, overrides))
    target = url or _local_url(settings)
    click.echo(f"{builder.mode.value} {body_format} push to {target}: {_summary(fields)}")
    if show_request:
        query, body = builder.build(fields)
        click.echo(f"  query: {json.dumps(query)}\n  body:  {body.decode('utf-8', 'replace')}")
    try:
        attempts = deliver(
            builder, target, fields, retries=retries, interval=interval, repeat=repeat
        )
    except OSError as e:
        click.echo(
            f"cannot connect to {target} ({e}); start the server with `make run`,"
            " or give --url (or PORT) where it listens",
            err=True,
        )
        sys.exit(1)
    answered = False
    for attempt in attempts:
        result = attempt.result
        head = f"attempt {attempt.number}: {attempt.seconds:.2f} s"
        if result is None or result.lapsed:
            click.echo(f"{head}: no answer (lapsed: WeChat would retry)")
        elif result.status != 200:
            click.echo(f"{head}: HTTP {result.status}: {result.body.decode('utf-8', 'replace')}")
        elif result.reply is None:
            answered = True
            click.echo(f"{head}: 200 success (nothing shown to the user)")
        else:
            answered = True
            click.echo(f"{head}: 200 {result.reply!r}")
            click.echo(result.plaintext.decode("utf-8", "replace"))
    sys.exit(0 if answered else 1)


def _pair(item: str) -> tuple[str, str]:
    name, separator, value = item.partition("=")
    if not separator or not name:
        raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--field")
    return name, value


def _summary(fields: dict[str, Any]) -> str:
    kind = fields.get("Event") or fields.get("MsgType")
    detail = fields.get("Content") or fields.get("EventKey") or fields.get("MediaId") or ""
    return f"{kind} {detail!r}" if detail else str(kind)


# -- commands that call WeChat's API ------------------------------------------------------


@contextmanager
def _api(settings: Settings) -> Iterator[WeChatAPI]:
    """The account's API client on the service's own store, so the CLI and the running service
    share one access_token (a classic token fetched here would revoke the service's); every
    failure is one line on stderr and exit status 1 (2 for what the call was given)."""
    if not settings.appid or not settings.appsecret:
        prefix = "WX_" if settings.name == DEFAULT_ACCOUNT else f"WX_{settings.name.upper()}_"
        click.echo(
            f"error: this command calls WeChat's API: set {prefix}APPID and {prefix}APPSECRET"
            " (the console's 开发 → 基本配置: 开发者ID and 开发者密码)",
            err=True,
        )
        sys.exit(2)
    try:
        store = open_store(settings.store_url)
    except (ValueError, StoreError) as e:
        click.echo(f"error: WX_STORE_URL: {e}", err=True)
        sys.exit(1)
    try:
        with WeChatAPI(
            settings.appid,
            settings.appsecret,
            store,
            base_url=settings.api_base,
            token_endpoint=settings.token_endpoint.value,
            miniprogram=settings.account_type is AccountType.MINIPROGRAM,
        ) as api:
            yield api
    except ValueError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except (WeChatAPIError, StoreError) as e:
        click.echo(f"error: {getattr(e, 'message', e)}", err=True)
        sys.exit(1)
    finally:
        store.close()


@wx.group("menu")
def menu() -> None:
    """Set, show or delete the Official Account's custom menu (自定义菜单)."""


@menu.command("set")
@click.argument("menu_file", metavar="MENU.json", type=click.File("rb"))
@account_option
def menu_set(menu_file: Any, account_name: str | None) -> None:
    """Replace the menu with the one in MENU.json, {"button": [...]} as `menu show` prints it."""
    try:
        wanted = json.load(menu_file)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="MENU.json") from None
    if not isinstance(wanted, dict):
        raise click.BadParameter('expected {"button": [...]}', param_hint="MENU.json")
    with _api(_account(_settings(), account_name)) as api:
        api.create_menu(wanted)
    click.echo(f"menu set: {len(wanted['button'])} button(s); users see it within minutes")


@menu.command("show")
@account_option
def menu_show(account_name: str | None) -> None:
    """Print the menu made through the API as JSON, ready for `menu set`."""
    with _api(_account(_settings(), account_name)) as api:
        current = api.get_menu()
    if current is None:
        click.echo("no menu made through the API (46003)", err=True)
        sys.exit(1)
    shown = {"button": current.get("menu", {}).get("button", [])}
    click.echo(json.dumps(shown, ensure_ascii=False, indent=2))
    conditional = current.get("conditionalmenu") or []
    if conditional:
        click.echo(f"(and {len(conditional)} conditional menu(s), not shown)", err=True)


@menu.command("delete")
@account_option
def menu_delete(account_name: str | None) -> None:
    """Delete the menu, conditional menus included."""
    with _api(_account(_settings(), account_name)) as api:
        api.delete_menu()
    click.echo("menu deleted")


@wx.command("qrcode")
@click.option("--scene", required=True, help="Digits make a scene_id, anything else a scene_str.")
@click.option("--permanent", is_flag=True, help="A permanent code (scene_id up to 100000).")
@click.option("--expire", type=int, help="Seconds a temporary code lives; default 30 days.")
@click.option(
    "--image",
    "image_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also save the image (a JPEG, as WeChat serves it) to this file.",
)
@account_option
def qrcode(
    scene: str,
    permanent: bool,
    expire: int | None,
    image_path: Path | None,
    account_name: str | None,
) -> None:
    """Create a parametric QR code (带参数二维码) and print its image URL.

    A user who scans it sends a subscribe event (EventKey qrscene_<scene>) or, when already
    following, a SCAN event (EventKey <scene>), which handlers read as message.scene.
    """
    value: int | str = int(scene) if scene.isdigit() else scene
    with _api(_account(_settings(), account_name)) as api:
        code = api.create_qrcode(value, permanent=permanent, expire_seconds=expire)
        image = api.qrcode_image(code.ticket) if image_path is not None else None
    life = "permanent" if code.expire_seconds is None else f"expires in {code.expire_seconds} s"
    click.echo(f"QR code for scene {value!r} ({life}); it encodes {code.url}", err=True)
    click.echo(code.image_url)
    if image_path is not None and image is not None:
        image_path.write_bytes(image)
        click.echo(f"image saved to {image_path} ({len(image)} bytes)", err=True)
