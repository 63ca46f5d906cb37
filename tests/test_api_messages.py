"""Customer-service messages and the typing indicator: exact bodies on both clients, the
limits checked before sending, WeChat's refusals as typed errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from app.api import NotFollowing, ReplyWindowPassed, TooManyReplies
from tests.apikit import (  # noqa: F401 - fixtures
    OPENID,
    Caller,
    Script,
    call_fixture,
    fake_fixture,
    scripted_call_fixture,
    token,
)
from tests.fakewechat import MP_TYPING_PATH, SEND_PATH, TYPING_PATH, FakeWeChat

ARTICLE = {"title": "t", "description": "d", "url": "https://u", "picurl": "https://p"}

CASES: list[tuple[str, tuple[Any, ...], dict[str, Any], str, dict[str, Any]]] = [
    (
        "send_text",
        ("你好 <a href='https://x'>x</a>",),
        {},
        "text",
        {"content": "你好 <a href='https://x'>x</a>"},
    ),
    ("send_image", ("M1",), {}, "image", {"media_id": "M1"}),
    ("send_voice", ("M2",), {}, "voice", {"media_id": "M2"}),
    (
        "send_video",
        ("M3", "title", "desc"),
        {},
        "video",
        {"media_id": "M3", "title": "title", "description": "desc"},
    ),
    (
        "send_video",
        ("M3",),
        {"thumb_media_id": "T3"},
        "video",
        {"media_id": "M3", "title": "", "description": "", "thumb_media_id": "T3"},
    ),
    (
        "send_music",
        ("http://m", "http://hq", "T4"),
        {"title": "t", "description": "d"},
        "music",
        {
            "title": "t",
            "description": "d",
            "musicurl": "http://m",
            "hqmusicurl": "http://hq",
            "thumb_media_id": "T4",
        },
    ),
    (
        "send_news",
        ("t", "https://u"),
        {"description": "d", "picurl": "https://p"},
        "news",
        {"articles": [ARTICLE]},
    ),
    ("send_mpnews", ("M5",), {}, "mpnews", {"media_id": "M5"}),
    ("send_mpnewsarticle", ("A1",), {}, "mpnewsarticle", {"article_id": "A1"}),
    (
        "send_msgmenu",
        ("Rate us", [("101", "Good"), ("102", "Bad")], "Thanks"),
        {},
        "msgmenu",
        {
            "head_content": "Rate us",
            "list": [{"id": "101", "content": "Good"}, {"id": "102", "content": "Bad"}],
            "tail_content": "Thanks",
        },
    ),
    ("send_wxcard", ("C1",), {}, "wxcard", {"card_id": "C1"}),
    (
        "send_miniprogrampage",
        ("t", "pages/index", "T6"),
        {"appid": "wxmini"},
        "miniprogrampage",
        {"title": "t", "appid": "wxmini", "pagepath": "pages/index", "thumb_media_id": "T6"},
    ),
    (
        "send_link",
        ("t", "d", "https://x", "https://thumb"),
        {},
        "link",
        {"title": "t", "description": "d", "url": "https://x", "thumb_url": "https://thumb"},
    ),
    ("send_custom", ("text", {"content": "generic"}), {}, "text", {"content": "generic"}),
]


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "msgtype", "payload"),
    CASES,
    ids=[f"{case[0]}-{n}" for n, case in enumerate(CASES)],
)
def test_customer_service_bodies(
    call: Caller,
    fake: FakeWeChat,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    msgtype: str,
    payload: dict[str, Any],
) -> None:
    assert call(method, OPENID, *args, **kwargs) == {"errcode": 0, "errmsg": "ok"}
    expected = {"touser": OPENID, "msgtype": msgtype, msgtype: payload}
    [received] = fake.messages
    assert json.dumps(received, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)


def test_a_message_as_a_named_agent(call: Caller, fake: FakeWeChat) -> None:
    call("send_custom", OPENID, "image", {"media_id": "M"}, kf_account="kf01@mywechatid")
    assert fake.messages == [
        {
            "touser": OPENID,
            "msgtype": "image",
            "image": {"media_id": "M"},
            "customservice": {"kf_account": "kf01@mywechatid"},
        }
    ]


@pytest.mark.parametrize(
    ("method", "args", "complaint"),
    [
        (
            "send_text",
            ("字" * 683,),
            "text is 2049 UTF-8 bytes; a customer-service text takes at most 2048",
        ),
        (
            "send_custom",
            ("news", {"articles": [{}, {}]}),
            r"exactly 1 article since 2018 \(got 2\)",
        ),
        ("send_msgmenu", ("Rate us", []), "a menu message needs at least one option"),
    ],
    ids=["long-text", "two-articles", "empty-menu"],
)
def test_limits_are_checked_before_sending(
    call: Caller, fake: FakeWeChat, method: str, args: tuple[Any, ...], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        call(method, OPENID, *args)
    assert fake.requests == []


def test_the_longest_text_is_sent(call: Caller, fake: FakeWeChat) -> None:
    call("send_text", OPENID, "字" * 682 + "ab")  # 2048 bytes
    assert len(fake.messages) == 1


def test_an_empty_openid_is_refused(call: Caller, fake: FakeWeChat) -> None:
    with pytest.raises(ValueError, match="openid is empty"):
        call("send_text", "", "hi")
    assert fake.requests == []


@pytest.mark.parametrize(
    ("errcode", "error_type"),
    [(45015, ReplyWindowPassed), (45047, TooManyReplies), (43004, NotFollowing)],
)
def test_window_refusals_are_typed_and_not_retried(
    call: Caller, fake: FakeWeChat, errcode: int, error_type: type[Exception]
) -> None:
    fake.fail_next(SEND_PATH, errcode)
    with pytest.raises(error_type):
        call("send_image", OPENID, "M")
    assert len(fake.calls(SEND_PATH)) == 1
    assert fake.messages == []


def test_typing_indicator(call: Caller, fake: FakeWeChat) -> None:
    call("typing", OPENID)
    call("typing", OPENID, on=False)
    assert fake.typing == [
        {"touser": OPENID, "command": "Typing"},
        {"touser": OPENID, "command": "CancelTyping"},
    ]
    assert [r.path for r in fake.requests if r.path.endswith("typing")] == [TYPING_PATH] * 2


# -- Mini Programs ------------------------------------------------------------------------


def mini_program(fake: FakeWeChat, mode: str) -> Caller:
    return Caller(mode, base_url=fake.url, miniprogram=True)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_mini_program_sends_its_four_kinds(fake: FakeWeChat, mode: str) -> None:
    call = mini_program(fake, mode)
    call("send_text", OPENID, "hi")
    call("send_image", OPENID, "M1")
    call("send_link", OPENID, "t", "d", "https://x", "https://thumb")
    call("send_miniprogrampage", OPENID, "t", "pages/index?x=1", "T1")
    call.close()
    assert [m["msgtype"] for m in fake.messages] == ["text", "image", "link", "miniprogrampage"]
    assert fake.messages[3]["miniprogrampage"] == {
        "title": "t",
        "pagepath": "pages/index?x=1",
        "thumb_media_id": "T1",
    }
    assert {r.path for r in fake.requests if r.method == "POST" and "token" not in r.path} == {
        SEND_PATH
    }


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "complaint"),
    [
        ("send_voice", ("M",), {}, "a Mini Program cannot send 'voice' messages; it sends"),
        ("send_custom", ("news", {"articles": [ARTICLE]}), {}, "cannot send 'news'"),
        ("send_miniprogrampage", ("t", "p", "T"), {"appid": "wx"}, "leave appid out"),
    ],
)
def test_a_mini_program_is_kept_to_its_kinds(
    fake: FakeWeChat,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    complaint: str,
) -> None:
    call = mini_program(fake, "sync")
    with pytest.raises(ValueError, match=complaint):
        call(method, OPENID, *args, **kwargs)
    call.close()
    assert fake.requests == []


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_mini_program_types_on_the_business_path(fake: FakeWeChat, mode: str) -> None:
    call = mini_program(fake, mode)
    call("typing", OPENID)
    call.close()
    assert [r.path for r in fake.requests if r.path.endswith("typing")] == [MP_TYPING_PATH]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_mini_program_falls_back_when_the_business_path_wants_a_businessid(
    fake: FakeWeChat, mode: str
) -> None:
    fake.fail_next(MP_TYPING_PATH, 40101, errmsg="missing parameter")
    call = mini_program(fake, mode)
    call("typing", OPENID, on=False)
    call.close()
    typing_calls = [(r.path, r.errcode) for r in fake.requests if r.path.endswith("typing")]
    assert typing_calls == [(MP_TYPING_PATH, 40101), (TYPING_PATH, 0)]
    assert fake.typing == [{"touser": OPENID, "command": "CancelTyping"}]


def test_other_typing_refusals_are_not_fallen_back_from(
    scripted_call: Callable[..., Caller],
) -> None:
    script = Script(token("T1"), {"errcode": 45080, "errmsg": "no message exchange in 30 s"})
    with pytest.raises(Exception, match="errcode 45080"):
        scripted_call(script, miniprogram=True)("typing", OPENID)
    assert script.paths[1:] == [MP_TYPING_PATH]
