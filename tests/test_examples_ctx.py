"""The examples that use ctx, middleware and async handlers, tested as handler authors would."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app import TextReply
from app.testing import PushResult, WeChatClient
from examples import allow_list, async_llm, order_form, rate_limit
from tests.handlerkit import MakeApp, make_app

__all__ = ["make_app"]


def test_order_form_asks_three_questions_and_places_the_order(make_app: MakeApp) -> None:
    wechat = WeChatClient(make_app("examples.order_form"), user="oCustomer")
    assert wechat.text("hello").reply == TextReply("Send 'order' to place an order.")
    assert wechat.text("order").reply == TextReply(
        "What would you like to order? (send 'cancel' to stop)"
    )
    assert wechat.text("green tea").reply == TextReply(order_form.QUESTIONS[1][1])
    assert wechat.text("lots").reply == TextReply("Please send a number from 1 to 99.")
    assert wechat.text("3").reply == TextReply(order_form.QUESTIONS[2][1])
    assert wechat.text("1 Main Street").reply == TextReply(
        "Thank you! 3 × green tea will go to 1 Main Street."
    )
    assert wechat.session() == {"orders": 1}


def test_order_form_can_be_cancelled_at_any_step(make_app: MakeApp) -> None:
    app = make_app("examples.order_form")
    wechat, other = WeChatClient(app, user="oUndecided"), WeChatClient(app, user="oOther")
    wechat.text("order")
    other.text("order")
    wechat.text("oolong")
    assert wechat.text("cancel").reply == TextReply("Your order is cancelled.")
    assert wechat.text("cancel").reply == TextReply(
        "There is nothing to cancel. Send 'order' to order."
    )
    assert wechat.session() == {}
    assert other.session() == {"form": {}}  # each user has their own form


def test_rate_limit_answers_alone_past_five_messages_a_minute(make_app: MakeApp) -> None:
    app = make_app("examples.rate_limit")
    chatty, quiet = WeChatClient(app, user="oChatty"), WeChatClient(app, user="oQuiet")
    window = int(time.time() // rate_limit.WINDOW)
    replies = [chatty.text(f"message {n}").reply for n in range(rate_limit.LIMIT + 1)]
    if int(time.time() // rate_limit.WINDOW) != window:
        pytest.skip("the minute turned during the test")  # a new window counts from zero
    assert replies[:-1] == [TextReply(f"You said: message {n}") for n in range(rate_limit.LIMIT)]
    assert replies[-1] == TextReply(rate_limit.TOO_MANY)
    assert quiet.text("hi").reply == TextReply("You said: hi")
    assert chatty.event("CLICK", "MENU").success  # events are not limited (and not handled)


def test_allow_list_lets_only_listed_users_reach_the_handlers(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOWED_OPENIDS", "oTester1, oTester2")
    app = make_app("examples.allow_list")
    assert WeChatClient(app, user="oTester2").text("hi").reply == TextReply(
        "Welcome to the beta! You said: hi"
    )
    stranger = WeChatClient(app, user="oStranger")
    assert stranger.text("hi").reply == TextReply(allow_list.NOT_YET)
    assert stranger.subscribe().reply == TextReply(
        "Thanks for following! The chat opens to everyone soon."
    )


class FakeLLM:
    """An OpenAI-style chat completions server on loopback that echoes the conversation."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0
        self.status = 200
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"auth": self.headers["Authorization"], **body})
                time.sleep(fake.delay)
                asked = body["messages"][-1]["content"]
                answer = {"choices": [{"message": {"content": f" You asked: {asked} "}}]}
                data = json.dumps(answer).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/chat/completions"


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    fake = FakeLLM()
    thread = threading.Thread(target=fake.server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    monkeypatch.setenv("LLM_URL", fake.url)
    monkeypatch.setenv("LLM_API_KEY", "sk-test")
    yield fake
    fake.server.shutdown()
    fake.server.server_close()
    thread.join()


def test_async_llm_answers_and_remembers_the_conversation(make_app: MakeApp, llm: FakeLLM) -> None:
    wechat = WeChatClient(make_app("examples.async_llm"), user="oCurious")
    assert wechat.text("What is WeChat?").reply == TextReply("You asked: What is WeChat?")
    assert wechat.text("And Weixin?").reply == TextReply("You asked: And Weixin?")
    second = llm.requests[1]
    assert second["auth"] == "Bearer sk-test"
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert wechat.session()["history"][-1] == {
        "role": "assistant",
        "content": "You asked: And Weixin?",
    }


def test_async_llm_slower_than_wechat_is_answered_on_a_retry(
    make_app: MakeApp, llm: FakeLLM
) -> None:
    llm.delay = 1.5  # the deadline is 1 s
    wechat = WeChatClient(make_app("examples.async_llm"))
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "Take your time"}))
    results: list[PushResult] = [wechat.post(query, body), wechat.post(query, body)]
    assert results[0].lapsed
    assert results[1].reply == TextReply("You asked: Take your time")
    assert len(llm.requests) == 1


def test_async_llm_apologises_when_the_model_fails(
    make_app: MakeApp, llm: FakeLLM, caplog: pytest.LogCaptureFixture
) -> None:
    llm.status = 503
    wechat = WeChatClient(make_app("examples.async_llm"))
    assert wechat.text("Hello?").reply == TextReply(async_llm.SORRY)
    assert "the model did not answer: HTTPStatusError" in caplog.text
    assert wechat.session() == {}
