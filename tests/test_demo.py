"""The demo router: echo text, images and voice; welcome followers; nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from app.demo import WELCOME, router
from app.wechat.messages import Message, parse_message
from app.wechat.replies import ImageReply, TextReply, VoiceReply, make_reply

MEDIA_ID = "MvJ3Rp0vS9dqX6c2K6Lh1c1G6DnYq3kXoJd9a2Ck4n5i"


def push(msg_type: str, **fields: Any) -> Message:
    common = {
        "ToUserName": "gh_0123456789ab",
        "FromUserName": "oAbCdEfGhIjKlMnOpQrStUvWxYz0",
        "CreateTime": "1732406400",
    }
    return parse_message({**common, "MsgType": msg_type, **fields})


def test_text_is_echoed() -> None:
    message = push("text", Content="你好 hello", MsgId="24812345678901234")
    assert router.dispatch(message) == TextReply("你好 hello")


def test_empty_text_gets_success() -> None:
    message = push("text", Content="", MsgId="24812345678901234")
    assert router.dispatch(message) is None


def test_image_is_echoed_by_media_id() -> None:
    message = push("image", PicUrl="http://mmbiz.qpic.cn/x/0", MediaId=MEDIA_ID, MsgId="1")
    assert router.dispatch(message) == ImageReply(MEDIA_ID)


def test_voice_is_echoed_by_media_id() -> None:
    message = push("voice", MediaId=MEDIA_ID, Format="amr", MsgId="1")
    assert router.dispatch(message) == VoiceReply(MEDIA_ID)


@pytest.mark.parametrize("event_key", ["", "qrscene_123123"])
def test_subscribe_is_welcomed(event_key: str) -> None:
    message = push("event", Event="subscribe", EventKey=event_key)
    assert router.dispatch(message) == TextReply(WELCOME)


def test_welcome_says_it_is_the_demo_and_how_to_leave_it() -> None:
    assert "demo" in WELCOME
    assert "演示" in WELCOME
    assert WELCOME.count("WX_HANDLERS=") == 2


@pytest.mark.parametrize(
    "message",
    [
        push("video", MediaId=MEDIA_ID, ThumbMediaId="t", MsgId="1"),
        push("location", Location_X="23.1", Location_Y="113.3", Scale="20", MsgId="1"),
        push("link", Title="t", Description="d", Url="https://example.com/", MsgId="1"),
        push("event", Event="unsubscribe", EventKey=""),
        push("event", Event="CLICK", EventKey="MENU_HELP"),
        push("event", Event="debug_demo", debug_str="hello world"),
        push("file", MsgId="1"),
    ],
)
def test_everything_else_gets_success(message: Message) -> None:
    assert router.resolve(message) is None


def test_demo_replies_pass_make_reply() -> None:
    message = push("text", Content="hi", MsgId="1")
    reply = router.dispatch(message)
    assert make_reply(reply, message) == TextReply("hi")
