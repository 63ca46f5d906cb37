"""``async def`` handlers: answered like plain ones, slow ones under every WX_SLOW_STRATEGY."""

from __future__ import annotations

import gc
import threading
import time
import warnings

import pytest

from app import TextReply
from app.testing import PushResult, WeChatClient
from config import SlowStrategy
from tests.fakewechat import FakeWeChat
from tests.handlerkit import SECRET, MakeApp, eventually, fake_api, make_app

__all__ = ["fake_api", "make_app"]


def attempts(wechat: WeChatClient, content: str, count: int) -> list[PushResult]:
    """One push sent ``count`` times in a row, as WeChat's retries are."""
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": content}))
    return [wechat.post(query, body) for _ in range(count)]


def test_an_async_handler_answers_passively_with_ctx_and_app_context(make_app: MakeApp) -> None:
    wechat = WeChatClient(make_app())
    reply = wechat.text("async context").reply
    assert reply == TextReply("async tests.ctx_handlers.async_context app")
    assert wechat.session() == {"async": True}


def test_an_async_handlers_exception_is_contained_and_named(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    assert WeChatClient(make_app()).text("async fail").success
    assert "handler tests.ctx_handlers.async_fail failed on text" in caplog.text
    assert "ValueError: an async handler failed" in caplog.text


def test_a_slow_async_handler_is_answered_on_a_retry(make_app: MakeApp) -> None:
    first, second, third = attempts(WeChatClient(make_app()), "async sleep 1.5", 3)
    assert first.lapsed  # the deadline is 1 s
    assert second.reply == TextReply("slept 1.5 asynchronously")
    assert third.body == second.body


def test_a_slow_async_handler_goes_by_the_api_with_customer_service(
    make_app: MakeApp, fake_api: FakeWeChat
) -> None:
    app = make_app(
        appsecret=SECRET, api_base=fake_api.url, slow_strategy=SlowStrategy.CUSTOMER_SERVICE
    )
    (first,) = attempts(WeChatClient(app, user="oAsyncLate"), "async sleep 1.5", 1)
    assert first.success
    assert eventually(lambda: len(fake_api.messages) == 1)
    assert fake_api.messages[0]["text"] == {"content": "slept 1.5 asynchronously"}


def test_a_slow_async_handler_is_dropped_with_off(make_app: MakeApp) -> None:
    wechat = WeChatClient(make_app(slow_strategy=SlowStrategy.OFF))
    (first,) = attempts(wechat, "async sleep 1.2", 1)
    assert first.success
    time.sleep(0.5)  # the handler has finished; its reply was dropped
    assert wechat.text("next").reply == TextReply("echo: next")


def test_async_handlers_call_the_api_with_the_async_client(
    make_app: MakeApp, fake_api: FakeWeChat
) -> None:
    app = make_app(appsecret=SECRET, api_base=fake_api.url)
    wechat = WeChatClient(app, user="oAsyncApi")
    assert [wechat.text("async api").reply for _ in range(3)] == [TextReply("sent")] * 3
    assert [m["text"]["content"] for m in fake_api.messages] == ["sent by an async handler"] * 3
    assert fake_api.token_requests == 1  # shared with every client of the store


def test_async_handlers_on_every_handler_thread_run_at_once(make_app: MakeApp) -> None:
    """Four handlers waiting 0.8 s on four threads are all answered within two attempts (2 s);
    one after the other they would take 3.2 s."""
    app = make_app()  # 4 handler threads, a 1 s deadline
    results: list[PushResult] = []
    lock = threading.Lock()

    def ask(user: str) -> None:
        wechat = WeChatClient(app, user=user)
        result = wechat.send({"MsgType": "text", "Content": "async sleep 0.8"}, attempts=2)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=ask, args=(f"oParallel{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.reply for r in results] == [TextReply("slept 0.8 asynchronously")] * 4


def test_closing_the_app_leaves_no_loop_or_connection_open(
    make_app: MakeApp, fake_api: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(appsecret=SECRET, api_base=fake_api.url)
    assert WeChatClient(app).text("async api").reply == TextReply("sent")
    app.extensions["wechat"].close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert "not closed cleanly" not in caplog.text
