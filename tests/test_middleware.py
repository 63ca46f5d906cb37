"""Middleware around handlers: order, answering alone, failures contained and named."""

from __future__ import annotations

import pytest

from app import Router, TextReply
from app.testing import WeChatClient
from tests.handlerkit import MakeApp, make_app

__all__ = ["make_app"]


def test_middleware_runs_in_registration_order_outermost_first(make_app: MakeApp) -> None:
    wechat = WeChatClient(make_app("tests.ctx_handlers:layered"))
    assert wechat.text("hi").reply == TextReply(
        "outer[middle[inner[echo: hi by tests.ctx_handlers.echo]]]"
    )


def test_middleware_that_answers_alone_keeps_the_handler_from_running(make_app: MakeApp) -> None:
    app = make_app("tests.ctx_handlers:guarded")
    blocked = WeChatClient(app, user="oBlocked")
    assert blocked.text("count").reply == TextReply("You are blocked.")
    assert blocked.session() == {}
    assert WeChatClient(app, user="oWelcome").text("count").reply == TextReply("count 1")


def test_a_failing_middleware_is_named_and_the_push_answered_success(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    assert WeChatClient(make_app("tests.ctx_handlers:guarded")).text("middleware boom").success
    assert "middleware tests.ctx_handlers.broken failed on text" in caplog.text
    assert "RuntimeError: a middleware failed" in caplog.text  # with its traceback


def test_the_handler_is_named_when_its_exception_passes_through_middleware(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app("tests.ctx_handlers:layered")
    app.extensions["wechat"].service().router.add_handler(_fails, keyword="fail")
    assert WeChatClient(app).text("fail").success
    assert "handler tests.test_middleware._fails failed on text" in caplog.text


def _fails(message: object) -> str:
    raise LookupError("the handler's own fault")


def test_calling_call_next_twice_is_refused(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    wechat = WeChatClient(make_app("tests.ctx_handlers:guarded"))
    assert wechat.text("twice").success
    assert "middleware tests.ctx_handlers.broken failed on text" in caplog.text
    assert "called call_next twice" in caplog.text


def test_plain_middleware_runs_an_async_handler(make_app: MakeApp) -> None:
    wechat = WeChatClient(make_app("tests.ctx_handlers:guarded"))
    assert wechat.text("async sleep 0.01").reply == TextReply("slept 0.01 asynchronously")


def test_a_plain_middleware_between_async_code_is_told_to_become_async(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    wechat = WeChatClient(make_app("tests.ctx_handlers:tangled"))
    assert wechat.text("hello").reply == TextReply("echo: hello")  # plain handler: fine
    assert wechat.text("async context").success
    assert "middleware tests.ctx_handlers.plain_inside failed on text" in caplog.text
    assert "make it async def and await call_next()" in caplog.text


def test_middleware_runs_for_pushes_no_handler_takes(make_app: MakeApp) -> None:
    app = make_app("tests.ctx_handlers:layered")
    bare = Router()  # no handler at all
    bare.add_middleware(lambda message, call_next: call_next() or "nobody handles this")
    app.extensions["wechat"].service().router = bare
    assert WeChatClient(app).text("anything").reply == TextReply("nobody handles this")


def test_registering_a_middleware_twice_is_refused() -> None:
    router = Router()
    router.add_middleware(_passthrough)
    with pytest.raises(ValueError, match="middleware tests.test_middleware._passthrough is"):
        router.add_middleware(_passthrough)
    assert router.middlewares == (_passthrough,)


def _passthrough(message: object, call_next: object) -> object:
    return call_next()  # type: ignore[operator]
