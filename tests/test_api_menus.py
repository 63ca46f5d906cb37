"""The custom menu: create, get (None without one), delete, and the documented limits."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.api import Unauthorized
from tests.apikit import (  # noqa: F401 - fixtures
    Caller,
    call_fixture,
    fake_fixture,
)
from tests.fakewechat import MENU_CREATE_PATH, MENU_GET_PATH, FakeWeChat

MENU: dict[str, Any] = {
    "button": [
        {"type": "click", "name": "今日", "key": "V1001_TODAY"},
        {
            "name": "菜单",
            "sub_button": [
                {"type": "view", "name": "官网", "url": "https://example.com"},
                {
                    "type": "miniprogram",
                    "name": "小程序",
                    "url": "https://example.com",
                    "appid": "wxAPPID",
                    "pagepath": "pages/index",
                },
                {"type": "scancode_waitmsg", "name": "扫码", "key": "SCAN_1"},
            ],
        },
    ]
}


def test_create_get_delete(call: Caller, fake: FakeWeChat) -> None:
    assert call("get_menu") is None  # 46003: no menu yet
    assert call("create_menu", MENU) == {"errcode": 0, "errmsg": "ok"}
    assert fake.menu == MENU
    assert fake.calls(MENU_CREATE_PATH)[0].body == MENU
    assert call("get_menu") == {"menu": {**MENU, "menuid": 208396938}}
    call("delete_menu")
    assert fake.menu is None
    assert call("get_menu") is None
    assert [r.errcode for r in fake.calls(MENU_GET_PATH)] == [46003, 0, 46003]


def test_other_refusals_of_get_are_raised(call: Caller, fake: FakeWeChat) -> None:
    fake.fail_next(MENU_GET_PATH, 48001, errmsg="api unauthorized")
    with pytest.raises(Unauthorized):
        call("get_menu")


def _broken(change: Any) -> dict[str, Any]:
    menu = copy.deepcopy(MENU)
    change(menu)
    return menu


@pytest.mark.parametrize(
    ("menu", "complaint"),
    [
        ({"button": []}, "with 1 to 3 buttons"),
        ({"button": [MENU["button"][0]] * 4}, "with 1 to 3 buttons"),
        ({}, "with 1 to 3 buttons"),
        (
            _broken(lambda m: m["button"][0].update(name="今日的新闻啊")),
            r"button\[0\]: name '今日的新闻啊' is 18 UTF-8 bytes; at most 16 \(top-level",
        ),
        (
            _broken(lambda m: m["button"][1]["sub_button"][0].update(name="长" * 21)),
            r"button\[1\]\.sub_button\[0\]: name '长+' is 63 UTF-8 bytes; at most 60 \(sub-menu",
        ),
        (
            _broken(lambda m: m["button"][1]["sub_button"].extend([MENU["button"][0]] * 3)),
            r"button\[1\]\.sub_button takes 1 to 5",
        ),
        (
            _broken(lambda m: m["button"][1].update(sub_button=[])),
            r"button\[1\]\.sub_button takes 1 to 5",
        ),
        (
            _broken(lambda m: m["button"][1].update(type="click")),
            "has both a type and a sub_button",
        ),
        (
            _broken(lambda m: m["button"][0].update(type="tap")),
            r"button\[0\]: type 'tap' is not one of click, view",
        ),
        (_broken(lambda m: m["button"][0].pop("key")), r"button\[0\]: a click button needs 'key'"),
        (
            _broken(lambda m: m["button"][1]["sub_button"][1].pop("pagepath")),
            r"sub_button\[1\]: a miniprogram button needs 'pagepath'",
        ),
        (_broken(lambda m: m["button"][0].update(key="k" * 129)), "key is 129 bytes; at most 128"),
        (
            _broken(
                lambda m: m["button"][1]["sub_button"][0].update(url="https://x/" + "a" * 1015)
            ),
            "url is 1025 bytes; at most 1024",
        ),
        (_broken(lambda m: m["button"][0].pop("name")), r"button\[0\] needs a name"),
        ({"button": ["click"]}, r"button\[0\] must be an object"),
    ],
)
def test_menus_are_checked_before_sending(
    call: Caller, fake: FakeWeChat, menu: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        call("create_menu", menu)
    assert fake.requests == []


def test_a_sub_menu_name_of_60_bytes_is_sent(call: Caller, fake: FakeWeChat) -> None:
    call("create_menu", _broken(lambda m: m["button"][1]["sub_button"][0].update(name="长" * 20)))
    assert fake.menu is not None


def test_a_mini_program_has_no_menu(fake: FakeWeChat) -> None:
    call = Caller("sync", base_url=fake.url, miniprogram=True)
    for method, args in (("create_menu", (MENU,)), ("get_menu", ()), ("delete_menu", ())):
        with pytest.raises(ValueError, match="custom menus are for Official Accounts"):
            call(method, *args)
    call.close()
