"""Texts longer than WeChat shows passively: the first part answers, the rest follows in order."""

from __future__ import annotations

import pytest

from app import TextReply
from app.lifecycle.policy import CUT_MARKER, PASSIVE_TEXT_BYTES, split_text
from app.testing import FakeAPI, WeChatClient
from config import SlowStrategy
from tests.ctx_handlers import long_text
from tests.handlerkit import SECRET, MakeApp, eventually, make_app

__all__ = ["make_app"]


def contents(wechat: WeChatClient) -> list[str]:
    return [message["text"]["content"] for message in wechat.sent]


def test_a_long_text_answers_with_its_first_part_and_the_rest_follows_by_the_api(
    make_app: MakeApp,
) -> None:
    wechat = WeChatClient(make_app(appsecret=SECRET), api=FakeAPI(), user="oLongReader")
    reply = wechat.text("long 6000").reply
    assert isinstance(reply, TextReply)
    assert len(reply.content.encode()) <= PASSIVE_TEXT_BYTES
    assert reply.content.endswith("长")  # cut at a line's end, not inside a line
    assert eventually(lambda: len(wechat.sent) == 2)
    assert all(message["touser"] == "oLongReader" for message in wechat.sent)
    assert all(len(part.encode()) <= 2048 for part in contents(wechat))
    assert "\n".join([reply.content, *contents(wechat)]) == long_text(6000)


def test_without_an_appsecret_a_long_text_is_cut_short_and_the_log_says_so(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    reply = WeChatClient(make_app(), user="oNoSecret").text("long 6000").reply
    assert isinstance(reply, TextReply)
    assert reply.content.endswith("长" + CUT_MARKER)
    assert len(reply.content.encode()) <= PASSIVE_TEXT_BYTES
    assert long_text(6000).startswith(reply.content.removesuffix(CUT_MARKER))
    assert "cut short (set WX_APPSECRET to send the rest" in caplog.text
    assert "oNoSecret" not in caplog.text


def test_a_text_that_fits_is_answered_whole(make_app: MakeApp) -> None:
    wechat = WeChatClient(make_app(appsecret=SECRET), api=FakeAPI())
    reply = wechat.text("long 2000").reply
    assert reply == TextReply(long_text(2000))
    assert len(long_text(2000).encode()) <= PASSIVE_TEXT_BYTES
    assert wechat.sent == []


def test_a_late_long_text_goes_by_the_api_in_parts_in_order(make_app: MakeApp) -> None:
    app = make_app(appsecret=SECRET, slow_strategy=SlowStrategy.CUSTOMER_SERVICE)
    wechat = WeChatClient(app, api=FakeAPI())
    assert wechat.text("long 6000 slowly").success
    assert eventually(lambda: len(wechat.sent) == 3)
    assert "\n".join(contents(wechat)) == long_text(6000)


def test_the_rest_refused_by_the_allowance_is_kept_for_the_next_message(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    api = FakeAPI()
    wechat = WeChatClient(make_app(appsecret=SECRET), api=api)
    api.fail_next(45047)
    first = wechat.text("long 6000").reply
    assert eventually(lambda: "kept for the user's next message" in caplog.text)
    assert "answered 45047, TooManyReplies" in caplog.text
    rest = long_text(6000)[len(first.content) + 1 :]  # type: ignore[union-attr]
    reply = wechat.text("hi").reply
    assert isinstance(reply, TextReply)
    assert reply.content == split_text(rest, PASSIVE_TEXT_BYTES)[0].rstrip()
