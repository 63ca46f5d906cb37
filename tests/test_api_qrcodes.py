"""Parametric QR codes: the four kinds, their limits, the image URL and the image itself."""

from __future__ import annotations

import urllib.parse
from typing import Any

import pytest

from app.api import APIUnavailable, QRCode, WeChatAPI
from app.store import MemoryStore
from tests.apikit import (  # noqa: F401 - fixtures
    APPID,
    SECRET,
    Caller,
    call_fixture,
    fake_fixture,
)
from tests.fakewechat import QRCODE_PATH, SHOWQRCODE_PATH, FakeWeChat


@pytest.mark.parametrize(
    ("scene", "kwargs", "body"),
    [
        (
            42,
            {},
            {
                "expire_seconds": 2592000,
                "action_name": "QR_SCENE",
                "action_info": {"scene": {"scene_id": 42}},
            },
        ),
        (
            "bind:42",
            {"expire_seconds": 604800},
            {
                "expire_seconds": 604800,
                "action_name": "QR_STR_SCENE",
                "action_info": {"scene": {"scene_str": "bind:42"}},
            },
        ),
        (
            100000,
            {"permanent": True},
            {"action_name": "QR_LIMIT_SCENE", "action_info": {"scene": {"scene_id": 100000}}},
        ),
        (
            "poster",
            {"permanent": True},
            {
                "action_name": "QR_LIMIT_STR_SCENE",
                "action_info": {"scene": {"scene_str": "poster"}},
            },
        ),
    ],
    ids=["temporary-id", "temporary-str", "permanent-id", "permanent-str"],
)
def test_create_qrcode(
    call: Caller, fake: FakeWeChat, scene: int | str, kwargs: dict[str, Any], body: dict[str, Any]
) -> None:
    code = call("create_qrcode", scene, **kwargs)
    [(ticket, sent)] = fake.qrcodes.items()
    assert sent == body
    assert code == QRCode(
        ticket=ticket,
        url=f"http://weixin.qq.com/q/{ticket[4:20]}",
        expire_seconds=body.get("expire_seconds"),
        image_url=f"{fake.url}{SHOWQRCODE_PATH}?ticket={urllib.parse.quote(ticket, safe='')}",
    )
    assert "+" not in code.image_url.partition("?")[2] and "%2B%2F" in code.image_url


def test_the_image_url_is_on_mp_weixin_by_default() -> None:
    with WeChatAPI(APPID, SECRET, MemoryStore()) as api:
        assert api.qrcode_image_url("gQ+/a==") == (
            "https://mp.weixin.qq.com/cgi-bin/showqrcode?ticket=gQ%2B%2Fa%3D%3D"
        )
    with WeChatAPI(APPID, SECRET, MemoryStore(), qrcode_base_url="https://proxy/mp/") as api:
        assert api.qrcode_image_url("t") == "https://proxy/mp/cgi-bin/showqrcode?ticket=t"


def test_the_image(call: Caller, fake: FakeWeChat) -> None:
    code = call("create_qrcode", 7)
    image = call("qrcode_image", code.ticket)
    assert image == b"\xff\xd8\xff\xe0FAKEJPEG:" + code.ticket.encode()
    [request] = fake.calls(SHOWQRCODE_PATH)
    assert request.query == {"ticket": code.ticket}  # no access_token


def test_an_unknown_ticket_is_a_404(call: Caller, fake: FakeWeChat) -> None:
    with pytest.raises(APIUnavailable) as info:
        call("qrcode_image", "gQ-gone==")
    assert info.value.message == (
        f"GET {SHOWQRCODE_PATH}: no usable answer after 1 attempt(s) (HTTP 404)"
    )
    assert len(fake.calls(SHOWQRCODE_PATH)) == 1


def test_a_refused_scene_is_an_api_error(call: Caller, fake: FakeWeChat) -> None:
    fake.fail_next(QRCODE_PATH, 40053, errmsg="invalid action info")
    with pytest.raises(Exception, match="errcode 40053: invalid action info"):
        call("create_qrcode", 1)


@pytest.mark.parametrize(
    ("scene", "kwargs", "error", "complaint"),
    [
        (0, {}, ValueError, "a temporary QR code's scene_id is 1 to 4294967295 \\(got 0\\)"),
        (2**32, {}, ValueError, "scene_id is 1 to 4294967295"),
        (100001, {"permanent": True}, ValueError, "a permanent QR code's scene_id is 1 to 100000"),
        ("", {}, ValueError, "a scene string takes 1 to 64 characters"),
        ("x" * 65, {"permanent": True}, ValueError, "a scene string takes 1 to 64 characters"),
        (1, {"expire_seconds": 2592001}, ValueError, "expire_seconds is 1 to 2592000"),
        (1, {"expire_seconds": 0}, ValueError, "expire_seconds is 1 to 2592000 \\(got 0\\)"),
        (1, {"permanent": True, "expire_seconds": 60}, ValueError, "does not expire"),
        (True, {}, TypeError, "scene must be an int or a str, not bool"),
    ],
)
def test_scenes_are_checked(
    call: Caller,
    fake: FakeWeChat,
    scene: Any,
    kwargs: dict[str, Any],
    error: type[Exception],
    complaint: str,
) -> None:
    with pytest.raises(error, match=complaint):
        call("create_qrcode", scene, **kwargs)
    assert fake.requests == []
