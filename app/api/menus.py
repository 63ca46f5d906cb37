"""The custom menu (自定义菜单) of an Official Account: create, get, delete, API.md §9.

A menu is ``{"button": [...]}``: 1-3 top-level buttons, each with a ``type`` or 1-5
``sub_button`` entries, never both. :func:`check_menu` applies the documented limits before
sending, because WeChat's refusals (40016-40027) name the rule but not the button.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .call import Answer, Call, Caller, endpoint, json_answer
from .errors import APIError, ErrorCode

CREATE_PATH = "/cgi-bin/menu/create"
GET_PATH = "/cgi-bin/menu/get"
DELETE_PATH = "/cgi-bin/menu/delete"

#: Button type -> the fields it needs besides ``name``.
TYPES: dict[str, tuple[str, ...]] = {
    "click": ("key",),
    "view": ("url",),
    "scancode_push": ("key",),
    "scancode_waitmsg": ("key",),
    "pic_sysphoto": ("key",),
    "pic_photo_or_album": ("key",),
    "pic_weixin": ("key",),
    "location_select": ("key",),
    "media_id": ("media_id",),
    "view_limited": ("media_id",),
    "article_id": ("article_id",),
    "article_view_limited": ("article_id",),
    "miniprogram": ("url", "appid", "pagepath"),
}
MAX_BUTTONS = 3
MAX_SUB_BUTTONS = 5
#: UTF-8 bytes; which encoding WeChat counts is unconfirmed, UTF-8 is the strictest budget.
MAX_NAME = 16
MAX_SUB_NAME = 60
MAX_KEY = 128
MAX_URL = 1024


def _size(value: Any) -> int:
    return len(str(value).encode("utf-8"))


def _check_button(button: Any, where: str, *, top: bool) -> None:
    if not isinstance(button, Mapping):
        raise ValueError(f"{where} must be an object")
    name = button.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where} needs a name")
    limit = MAX_NAME if top else MAX_SUB_NAME
    if _size(name) > limit:
        raise ValueError(
            f"{where}: name {name!r} is {_size(name)} UTF-8 bytes; at most {limit}"
            f" ({'top-level' if top else 'sub-menu'} button; a CJK character is 3)"
        )
    if "sub_button" in button and top:
        subs = button["sub_button"]
        if "type" in button:
            raise ValueError(f"{where} has both a type and a sub_button; give one")
        if not isinstance(subs, list) or not 1 <= len(subs) <= MAX_SUB_BUTTONS:
            raise ValueError(f"{where}.sub_button takes 1 to {MAX_SUB_BUTTONS} buttons")
        for n, sub in enumerate(subs):
            _check_button(sub, f"{where}.sub_button[{n}]", top=False)
        return
    kind = button.get("type")
    if kind not in TYPES:
        raise ValueError(f"{where}: type {kind!r} is not one of {', '.join(TYPES)}")
    for field in TYPES[str(kind)]:
        if not button.get(field):
            raise ValueError(f"{where}: a {kind} button needs {field!r}")
    if "key" in button and _size(button["key"]) > MAX_KEY:
        raise ValueError(f"{where}: key is {_size(button['key'])} bytes; at most {MAX_KEY}")
    if "url" in button and _size(button["url"]) > MAX_URL:
        raise ValueError(f"{where}: url is {_size(button['url'])} bytes; at most {MAX_URL}")


def check_menu(menu: Mapping[str, Any]) -> None:
    """Refuse a menu WeChat would refuse, naming the button, e.g. ``button[1].sub_button[0]``.

    :raises ValueError: the first rule broken.
    """
    buttons = menu.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= MAX_BUTTONS:
        raise ValueError(f"a menu is {{'button': [...]}} with 1 to {MAX_BUTTONS} buttons")
    for n, button in enumerate(buttons):
        _check_button(button, f"button[{n}]", top=True)


def _menu(answer: Answer) -> dict[str, Any]:
    return {name: value for name, value in answer.json.items() if name not in ("errcode", "errmsg")}


def _no_menu(error: APIError) -> None:
    if error.errcode != ErrorCode.NO_MENU:
        raise error
    return None


class Menus(Caller):
    @endpoint
    def create_menu(self, menu: Mapping[str, Any]) -> Call[dict[str, Any]]:
        """Replace the menu with ``menu`` (``{"button": [...]}``); users see it within minutes.

        :raises ValueError: see :func:`check_menu`.
        """
        self._official_only("custom menus")
        check_menu(menu)
        # Setting the same menu twice leaves the same menu: safe to retry.
        return Call("POST", CREATE_PATH, json_answer, body=dict(menu), idempotent=True)

    @endpoint
    def get_menu(self) -> Call[dict[str, Any] | None]:
        """The menu made through the API, ``{"menu": {"button": [...], "menuid": ...},
        "conditionalmenu": [...]}``, or None when there is none (46003)."""
        self._official_only("custom menus")
        return Call("GET", GET_PATH, _menu, idempotent=True, recover=_no_menu)

    @endpoint
    def delete_menu(self) -> Call[dict[str, Any]]:
        """Delete the menu, conditional menus included."""
        self._official_only("custom menus")
        return Call("GET", DELETE_PATH, json_answer, idempotent=True)
