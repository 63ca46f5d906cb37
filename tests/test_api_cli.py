"""`python -m app menu …` and `python -m app qrcode …` against the fake API (WX_API_BASE), with
the service's settings: click's runner for the cases, one real subprocess for the whole path."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from app.console import wx
from tests.apikit import APPID, SECRET, fake_fixture  # noqa: F401 - fixtures
from tests.conftest import TOKEN
from tests.fakewechat import MENU_CREATE_PATH, QRCODE_PATH, SHOWQRCODE_PATH, FakeWeChat
from tests.servers import run_cli
from tests.test_api_menus import MENU


@pytest.fixture
def env(fake: FakeWeChat, tmp_path: Path) -> dict[str, str]:
    """The service's settings for an account whose API is the fake."""
    return {
        "WX_TOKEN": TOKEN,
        "WX_APPID": APPID,
        "WX_APPSECRET": SECRET,
        "WX_API_BASE": fake.url,
        "WX_STORE_URL": f"sqlite:///{tmp_path}/wx.db",
    }


Run = Callable[..., Result]


@pytest.fixture
def run(env: dict[str, str]) -> Run:
    """``run(*args, **env_changes)``: the command through click's runner."""
    runner = CliRunner()

    def invoke(*args: str, **changes: str) -> Result:
        return runner.invoke(wx, list(args), env={**env, **changes}, catch_exceptions=False)

    return invoke


def test_menu_set_show_delete(run: Run, fake: FakeWeChat, tmp_path: Path) -> None:
    path = tmp_path / "menu.json"
    path.write_text(json.dumps(MENU, ensure_ascii=False), encoding="utf-8")
    result = run("menu", "set", str(path))
    assert (result.exit_code, result.output) == (
        0,
        "menu set: 2 button(s); users see it within minutes\n",
    )
    assert fake.calls(MENU_CREATE_PATH)[0].body == MENU
    shown = run("menu", "show")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout) == MENU  # without menuid: ready for `menu set`
    assert "今日" in shown.stdout  # not \u escapes
    deleted = run("menu", "delete")
    assert (deleted.exit_code, deleted.output, fake.menu) == (0, "menu deleted\n", None)
    absent = run("menu", "show")
    assert (absent.exit_code, absent.stderr) == (1, "no menu made through the API (46003)\n")
    assert fake.token_requests == 1  # the store keeps the token between commands


def test_menu_set_checks_the_menu_before_sending(
    run: Run, fake: FakeWeChat, tmp_path: Path
) -> None:
    path = tmp_path / "menu.json"
    path.write_text('{"button": [{"type": "click", "name": "x"}]}', encoding="utf-8")
    result = run("menu", "set", str(path))
    assert (result.exit_code, result.stderr) == (
        2,
        "error: button[0]: a click button needs 'key'\n",
    )
    path.write_text("{not json", encoding="utf-8")
    result = run("menu", "set", str(path))
    assert result.exit_code == 2 and "not JSON" in result.stderr
    assert fake.requests == []


def test_a_refusal_is_one_line(run: Run, fake: FakeWeChat) -> None:
    fake.fail_next(MENU_CREATE_PATH, 48001, errmsg="api unauthorized rid: 1-2-3")
    fake.fail_next("/cgi-bin/menu/delete", 48001, errmsg="api unauthorized rid: 1-2-3")
    result = run("menu", "delete")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: /cgi-bin/menu/delete answered errcode 48001 (NO_PERMISSION):"
        " api unauthorized rid: 1-2-3\n",
    )


@pytest.mark.parametrize(
    "changes",
    [{"WX_APPSECRET": ""}, {"WX_APPID": "", "WX_APPSECRET": ""}],
    ids=["no-secret", "neither"],
)
def test_commands_need_the_appid_and_the_secret(
    run: Run, fake: FakeWeChat, changes: dict[str, str]
) -> None:
    result = run("qrcode", "--scene", "42", **changes)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: this command calls WeChat's API: set WX_APPID and WX_APPSECRET"
        " (the console's 开发 → 基本配置: 开发者ID and 开发者密码)\n"
    )
    assert fake.requests == []


def test_qrcode_prints_the_image_url(run: Run, fake: FakeWeChat) -> None:
    result = run("qrcode", "--scene", "42", "--expire", "604800")
    assert result.exit_code == 0, result.stderr
    [(ticket, body)] = fake.qrcodes.items()
    assert body == {
        "expire_seconds": 604800,
        "action_name": "QR_SCENE",
        "action_info": {"scene": {"scene_id": 42}},
    }
    assert result.stdout.startswith(f"{fake.url}{SHOWQRCODE_PATH}?ticket=gQ%2B%2F")
    assert result.stderr == (
        f"QR code for scene 42 (expires in 604800 s); it encodes"
        f" http://weixin.qq.com/q/{ticket[4:20]}\n"
    )
    assert fake.calls(SHOWQRCODE_PATH) == []


def test_a_permanent_string_qrcode_with_its_image(
    run: Run, fake: FakeWeChat, tmp_path: Path
) -> None:
    out = tmp_path / "poster.jpg"
    result = run("qrcode", "--scene", "poster:7", "--permanent", "--image", str(out))
    assert result.exit_code == 0, result.stderr
    [(ticket, body)] = fake.qrcodes.items()
    assert body["action_name"] == "QR_LIMIT_STR_SCENE"
    assert body["action_info"] == {"scene": {"scene_str": "poster:7"}}
    assert out.read_bytes() == b"\xff\xd8\xff\xe0FAKEJPEG:" + ticket.encode()
    assert f"image saved to {out}" in result.stderr


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (("--scene", "100001", "--permanent"), "a permanent QR code's scene_id is 1 to 100000"),
        (("--scene", "1", "--permanent", "--expire", "60"), "does not expire"),
        (("--scene", "1", "--expire", "2592001"), "expire_seconds is 1 to 2592000"),
    ],
)
def test_qrcode_arguments_are_checked(
    run: Run, fake: FakeWeChat, args: tuple[str, ...], complaint: str
) -> None:
    result = run("qrcode", *args)
    assert result.exit_code == 2 and complaint in result.stderr
    assert fake.calls(QRCODE_PATH) == []


def test_a_mini_program_has_no_qrcodes_here(run: Run, fake: FakeWeChat) -> None:
    result = run("qrcode", "--scene", "1", WX_ACCOUNT_TYPE="miniprogram")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: parametric QR codes are for Official Accounts; this account is a Mini Program\n",
    )


def test_qrcode_as_a_subprocess(env: dict[str, str], fake: FakeWeChat) -> None:
    result = run_cli("qrcode", "--scene", "bind:42", env=env)
    assert result.returncode == 0, result.stderr
    [ticket] = fake.qrcodes
    quoted = urllib.parse.quote(ticket, safe="")
    assert result.stdout == f"{fake.url}{SHOWQRCODE_PATH}?ticket={quoted}\n"
