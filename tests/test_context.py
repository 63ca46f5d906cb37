"""ctx: what a handler reaches besides its message, tested through pushes."""

from __future__ import annotations

import json

import pytest

from app import TextReply, ctx
from app.logs import pseudonym
from app.testing import WeChatClient
from app.wechat.codec import BodyFormat
from app.wechat.envelope import Mode
from tests.conftest import APPID
from tests.fakewechat import FakeWeChat
from tests.handlerkit import SECRET, MakeApp, fake_api, make_app

__all__ = ["fake_api", "make_app"]


@pytest.mark.parametrize(
    ("mode", "body_format"),
    [
        (Mode.SAFE, BodyFormat.XML),
        (Mode.PLAINTEXT, BodyFormat.XML),
        (Mode.COMPATIBLE, BodyFormat.XML),
    ],
)
def test_a_handler_reaches_its_push_settings_and_app(
    make_app: MakeApp, mode: Mode, body_format: BodyFormat
) -> None:
    wechat = WeChatClient(make_app(), mode=mode, body_format=body_format)
    reply = wechat.text("context").reply
    assert isinstance(reply, TextReply)
    assert json.loads(reply.content) == {
        "same_message": True,
        "mode": mode.value,
        "format": body_format.value,
        "content": "context",
        "appid": APPID,
        "app": "app",
        "handler": "tests.ctx_handlers.context",
    }


def test_ctx_log_names_the_push_by_pseudonym_never_the_openid(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    assert WeChatClient(make_app(), user="oLoggingUser").text("log").reply == TextReply("logged")
    (line,) = [record.getMessage() for record in caplog.records if record.name == "app.handler"]
    assert line.startswith(f"msg:{pseudonym('oLoggingUser')}:")
    assert line.endswith(" hello from the handler")
    assert "oLoggingUser" not in caplog.text


def test_ctx_outside_a_handler_says_where_it_works() -> None:
    with pytest.raises(RuntimeError, match="ctx is used outside a handler"):
        ctx.session  # noqa: B018


def test_ctx_api_without_an_appsecret_fails_the_handler_with_the_fix(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    assert WeChatClient(make_app()).text("api").success
    assert "handler tests.ctx_handlers.api failed on text" in caplog.text
    assert "ctx.api needs WX_APPSECRET" in caplog.text


def test_ctx_api_is_the_services_client_and_shares_its_token(
    make_app: MakeApp, fake_api: FakeWeChat
) -> None:
    app = make_app(appsecret=SECRET, api_base=fake_api.url)
    wechat = WeChatClient(app, user="oCaller")
    assert wechat.text("api").reply == TextReply("sent")
    assert wechat.text("api").reply == TextReply("sent")
    sent = {"touser": "oCaller", "msgtype": "text", "text": {"content": "sent by the handler"}}
    assert fake_api.messages == [sent, sent]
    assert wechat.sent == [sent, sent]
    assert fake_api.token_requests == 1


def test_a_failing_handler_is_named_as_before(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    assert WeChatClient(make_app()).text("count then fail").success
    assert "handler tests.ctx_handlers.count_then_fail failed on text" in caplog.text
    assert "RuntimeError: after changing the session" in caplog.text
