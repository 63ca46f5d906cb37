"""Every example, tested the way its README tells handler authors to: with app.testing."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from app import Article, NewsReply, TextReply, create_app
from app.testing import WeChatClient
from config import Settings, SlowStrategy
from examples import keywords

MakeClient = Callable[..., WeChatClient]


@pytest.fixture
def wechat_for(settings: Settings) -> Iterator[MakeClient]:
    apps: list[Flask] = []

    def make(module: str, **changes: object) -> WeChatClient:
        app = create_app(dataclasses.replace(settings, handlers=module, **changes))  # type: ignore[arg-type]
        apps.append(app)
        return WeChatClient(app)

    yield make
    for app in apps:
        app.extensions["wechat"].close()


def test_keywords(wechat_for: MakeClient) -> None:
    wechat = wechat_for("examples.keywords")
    assert wechat.text("help").reply == TextReply(keywords.HELP)
    assert wechat.text("  帮助 ").reply == TextReply(keywords.HELP)
    assert wechat.text("order 42").reply == TextReply("Order 42 is on its way.")
    news = wechat.text("news").reply
    assert isinstance(news, NewsReply)
    assert news.articles == (
        Article(
            "Today at wx-push",
            "What changed this week",
            "https://example.com/cover.jpg",
            "https://example.com/today",
        ),
    )
    assert wechat.text("weather").reply == TextReply(
        f"Sorry, I don't know 'weather'. {keywords.HELP}"
    )
    assert wechat.image("MEDIA").success


def test_welcome(wechat_for: MakeClient) -> None:
    wechat = wechat_for("examples.welcome")
    assert wechat.subscribe().reply == TextReply("Welcome! Send 'help' to see what I can do.")
    assert wechat.subscribe("summer").reply == TextReply(
        "Welcome! You found us through our summer campaign."
    )
    assert wechat.subscribe("77").reply == TextReply("Welcome! You found us through code 77.")
    assert wechat.event("SCAN", "77", Ticket="t").reply == TextReply("Welcome back! (code 77)")
    assert wechat.event("unsubscribe").success


def test_menu(wechat_for: MakeClient) -> None:
    wechat = wechat_for("examples.menu")
    assert wechat.event("CLICK", "MENU_HOURS").reply == TextReply("Open every day, 9:00-21:00.")
    assert wechat.event("CLICK", "MENU_CONTACT").reply == TextReply(
        "Call 400-000-0000 or write to hello@example.com."
    )
    assert wechat.event("CLICK", "MENU_X").reply == TextReply(
        "That button (MENU_X) is not wired up yet."
    )
    assert wechat.event("VIEW", "https://example.com/", MenuId="1").success
    scan = {"ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "SN-1234"}}
    assert wechat.event("scancode_waitmsg", "SCAN", **scan).reply == TextReply(
        "You scanned: SN-1234"
    )


def test_slow_llm_is_answered_on_a_retry(
    wechat_for: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLOW_LLM_SECONDS", "1.5")
    wechat = wechat_for("examples.slow_llm")  # the fixture's deadline is 1 s
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "What is WeChat?"}))
    assert wechat.post(query, body).lapsed
    assert wechat.post(query, body).reply == TextReply(
        "After some thought about 'What is WeChat?': it depends."
    )


def test_slow_llm_with_customer_service_strategy(
    wechat_for: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLOW_LLM_SECONDS", "1.5")
    wechat = wechat_for("examples.slow_llm", slow_strategy=SlowStrategy.CUSTOMER_SERVICE)
    assert wechat.text("first").success  # at the deadline; no AppSecret: kept for later
    time.sleep(1.0)
    monkeypatch.setenv("SLOW_LLM_SECONDS", "0")
    assert wechat.text("second").reply == TextReply(
        "After some thought about 'first': it depends.\n\n"
        "After some thought about 'second': it depends."
    )
