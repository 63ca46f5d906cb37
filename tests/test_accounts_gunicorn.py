"""Three accounts behind one real ``gunicorn wsgi:app``, configured without code: the default
account by the unprefixed settings, ``shop`` by prefixed ones, the Mini Program ``mini`` by a
TOML file. The same user sends each the same MsgId, and nothing crosses."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.testing import PushBuilder
from app.wechat.codec import BodyFormat
from app.wechat.errors import WeChatError
from app.wechat.replies import TextReply
from config import Settings, load_settings
from tests.conftest import AES_KEY, APPID, TOKEN
from tests.servers import gunicorn, request, run_cli

SHOP_KEY = "ShopShopShopShopShopShopShopShopShopShop123"
MINI_KEY = "MiniMiniMiniMiniMiniMiniMiniMiniMiniMini456"
ACCOUNTS_TOML = f"""\
[mini]
token = "miniToken2026"
appid = "wx00000000000000b2"
aes_key = "{MINI_KEY}"
account_type = "miniprogram"
handlers = "tests.account_handlers:mini"
"""
USER = "oSameUserInEveryAccount0000"
MSG_ID = 6054768590064713728


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str], Path]]:
    """The server's URL, its environment, and the directory with calls.log and gunicorn.log."""
    tmp = tmp_path_factory.mktemp("accounts")
    (tmp / "accounts.toml").write_text(ACCOUNTS_TOML)
    env = {
        "WX_TOKEN": TOKEN,
        "WX_APPID": APPID,
        "WX_AES_KEY": AES_KEY,
        "WX_HANDLERS": "tests.service_handlers",
        "WX_ACCOUNTS": "shop",
        "WX_SHOP_TOKEN": "shopToken2026",
        "WX_SHOP_APPID": "wx00000000000000a1",
        "WX_SHOP_AES_KEY": SHOP_KEY,
        "WX_SHOP_HANDLERS": "tests.account_handlers",
        "WX_ACCOUNTS_FILE": str(tmp / "accounts.toml"),
        "WX_SLOW_STRATEGY": "customer_service",
        "WX_DEADLINE": "1",
        "WX_STORE_URL": f"sqlite:///{tmp}/ledger.db",
        "WX_TEST_CALLS": str(tmp / "calls.log"),
    }
    with gunicorn(env, workers=2, log=tmp / "gunicorn.log") as url:
        yield url, env, tmp


def account(env: dict[str, str], name: str) -> Settings:
    return load_settings(env, dotenv=False).account(name)


def runs(tmp: Path, sender: str) -> list[str]:
    """Whose handler ran, once per run, for pushes from ``sender``."""
    lines = (tmp / "calls.log").read_text().splitlines()
    identities = [line.split(" ", 1)[1] for line in lines if sender in line]
    return sorted(i.split("|")[0] if "|" in i else "default" for i in identities)


def test_the_same_user_and_msgid_run_each_accounts_handler_once(
    served: tuple[str, dict[str, str], Path],
) -> None:
    url, env, tmp = served
    user = USER + "A"
    answers = {}
    for name, body_format in [
        ("default", BodyFormat.XML),
        ("shop", BodyFormat.XML),
        ("mini", BodyFormat.JSON),
    ]:
        settings = account(env, name)
        wechat = PushBuilder(settings, user=user, body_format=body_format)
        query, body = wechat.build(
            wechat.complete({"MsgType": "text", "Content": "same", "MsgId": MSG_ID})
        )
        for _ in range(3):  # WeChat's three attempts, all answered from the first run
            status, answer = request("POST", url + settings.path, query, body)
        answers[name] = wechat.read(status, answer)
    assert answers["default"].reply == TextReply("echo: same")
    assert answers["shop"].reply == TextReply("shop: same")
    assert answers["mini"].body == b"success"  # a Mini Program's content goes by the API
    assert runs(tmp, user) == ["default", "mini", "shop"]


def test_each_reply_is_sealed_with_its_accounts_key_and_appid(
    served: tuple[str, dict[str, str], Path],
) -> None:
    url, env, _ = served
    default = PushBuilder(account(env, "default"), user=USER + "B")
    shop = PushBuilder(account(env, "shop"), user=USER + "B")
    push = {"MsgType": "text", "Content": "sealed", "MsgId": MSG_ID}
    to_default = request("POST", url + "/wx", *default.build(default.complete(push)))
    to_shop = request("POST", url + "/wx/shop", *shop.build(shop.complete(push)))
    assert shop.read(*to_shop).reply == TextReply("shop: sealed")
    assert default.read(*to_default).reply == TextReply("echo: sealed")
    for reader, answer in [(default, to_shop), (shop, to_default)]:
        with pytest.raises(WeChatError):
            reader.read(*answer)


def test_a_kept_reply_waits_for_its_own_accounts_next_message(
    served: tuple[str, dict[str, str], Path],
) -> None:
    url, env, tmp = served
    default = PushBuilder(account(env, "default"), user=USER + "C")
    shop = PushBuilder(account(env, "shop"), user=USER + "C")

    def text(wechat: PushBuilder, path: str, content: str) -> object:
        built = wechat.build(wechat.complete({"MsgType": "text", "Content": content}))
        return wechat.read(*request("POST", url + path, *built)).reply

    # No AppSecret: the late reply is kept for the user's next message to the default account.
    assert text(default, "/wx", "sleep 1.4") is None
    deadline = time.monotonic() + 15
    log = tmp / "gunicorn.log"
    while "default]: late text reply" not in log.read_text():
        assert time.monotonic() < deadline, "the late reply was never kept"
        time.sleep(0.05)
    assert text(shop, "/wx/shop", "next") == TextReply("shop: next")
    assert text(default, "/wx", "next") == TextReply("slept 1.4\n\necho: next")


def test_metrics_and_log_lines_carry_the_account(
    served: tuple[str, dict[str, str], Path],
) -> None:
    url, env, tmp = served
    shop = PushBuilder(account(env, "shop"), user=USER + "D")
    built = shop.build(shop.complete({"MsgType": "text", "Content": "counted"}))
    assert request("POST", url + "/wx/shop", *built)[0] == 200
    metrics = request("GET", url + "/metrics")[1].decode()
    assert re.search(
        r'^wx_pushes_total\{account="shop",outcome="reply",type="text"\} ', metrics, re.M
    )
    log = (tmp / "gunicorn.log").read_text()
    assert re.search(r"INFO app\.views \[shop\]: push gh_\w+ text \d+ -> reply", log)


def test_the_commands_choose_an_account(served: tuple[str, dict[str, str], Path]) -> None:
    url, env, _ = served
    simulated = run_cli(
        "simulate", "--account", "shop", "--url", url + "/wx/shop", "--content", "hi", env=env
    )
    assert simulated.returncode == 0, simulated.stderr
    assert "TextReply(content='shop: hi')" in simulated.stdout
    checked = run_cli("check", "--account", "mini", "--url", url + "/wx/mini", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "Settings are valid (miniprogram account 'mini')." in checked.stdout
    wrong = run_cli("check", "--account", "shop", "--url", url + "/wx", env=env)
    assert wrong.returncode == 1
    assert "FAIL  403: the signature does not match" in wrong.stdout


def test_info_lists_every_account(served: tuple[str, dict[str, str], Path]) -> None:
    _, env, _ = served
    result = run_cli("info", "--port", "8000", env=env)
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^Serving the .*$", result.stdout, re.M) == [
        "Serving the official account on http://127.0.0.1:8000/wx",
        "Serving the official account 'shop' on http://127.0.0.1:8000/wx/shop",
        "Serving the miniprogram account 'mini' on http://127.0.0.1:8000/wx/mini",
    ]
    unknown = run_cli("info", "--account", "shopp", env=env)
    assert unknown.returncode == 2
    assert unknown.stderr == (
        "error: There is no account 'shopp'; the accounts served are default, shop, mini."
        " Choose one with --account NAME.\n"
    )
