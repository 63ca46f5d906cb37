"""User info: one profile or a batch, unionid included, typed refusals."""

from __future__ import annotations

import pytest

from app.api import InvalidOpenID, UserInfo
from tests.apikit import (  # noqa: F401 - fixtures
    OPENID,
    Caller,
    call_fixture,
    fake_fixture,
)
from tests.fakewechat import USER_BATCH_PATH, USER_INFO_PATH, FakeWeChat

PROFILE = {
    "subscribe_time": 1_700_000_000,
    "unionid": "o6_bmasdasdsad6_2sgVt7hMZOPfL",
    "remark": "VIP",
    "groupid": 0,
    "tagid_list": [128, 2],
    "subscribe_scene": "ADD_SCENE_QR_CODE",
    "qr_scene": 98765,
    "qr_scene_str": "",
    "language": "zh_CN",
}


def test_user_info(call: Caller, fake: FakeWeChat) -> None:
    fake.add_user(OPENID, **PROFILE)
    user = call("user_info", OPENID, lang="en")
    assert user == UserInfo(
        openid=OPENID,
        subscribe=True,
        unionid="o6_bmasdasdsad6_2sgVt7hMZOPfL",
        subscribe_time=1_700_000_000,
        subscribe_scene="ADD_SCENE_QR_CODE",
        qr_scene=98765,
        qr_scene_str="",
        remark="VIP",
        tagid_list=(128, 2),
        raw={"subscribe": 1, "openid": OPENID, **PROFILE},
    )
    [request] = fake.calls(USER_INFO_PATH)
    assert (request.method, request.query["openid"], request.query["lang"]) == (
        "GET",
        OPENID,
        "en",
    )


def test_a_user_who_does_not_follow(call: Caller, fake: FakeWeChat) -> None:
    fake.add_user(OPENID, subscribe=0)
    user = call("user_info", OPENID)
    assert (user.subscribe, user.unionid, user.subscribe_time, user.tagid_list) == (
        False,
        None,
        None,
        (),
    )


def test_an_unknown_openid_is_typed(call: Caller) -> None:
    with pytest.raises(InvalidOpenID) as info:
        call("user_info", "oSomebodyElse")
    assert info.value.path == USER_INFO_PATH


def test_users_info_in_one_call(call: Caller, fake: FakeWeChat) -> None:
    for n in range(3):
        fake.add_user(f"o{n}", unionid=f"u{n}")
    users = call("users_info", ["o2", "o0", "o1"])
    assert [(u.openid, u.unionid) for u in users] == [("o2", "u2"), ("o0", "u0"), ("o1", "u1")]
    [request] = fake.calls(USER_BATCH_PATH)
    assert request.body == {
        "user_list": [{"openid": o, "lang": "zh_CN"} for o in ("o2", "o0", "o1")]
    }


@pytest.mark.parametrize(
    ("method", "args", "complaint"),
    [
        ("user_info", ("",), "openid is empty"),
        ("user_info", (OPENID, "fr"), "lang must be one of"),
        ("users_info", ([],), "users_info takes 1 to 100 OpenIDs \\(got 0\\)"),
        ("users_info", ([f"o{n}" for n in range(101)],), "takes 1 to 100 OpenIDs \\(got 101\\)"),
        ("users_info", (["o1", ""],), "an openid is empty"),
    ],
)
def test_arguments_are_checked(
    call: Caller, fake: FakeWeChat, method: str, args: tuple[object, ...], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        call(method, *args)
    assert fake.requests == []


def test_a_mini_program_has_no_user_profiles(fake: FakeWeChat) -> None:
    call = Caller("sync", base_url=fake.url, miniprogram=True)
    with pytest.raises(ValueError, match="user profiles are for Official Accounts"):
        call("user_info", OPENID)
    call.close()
