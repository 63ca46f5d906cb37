"""The customer-service window: refused late replies wait for the next message, ctx.reachable."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask
from prometheus_client import REGISTRY

from app import TextReply, window
from app.testing import FakeAPI, WeChatClient
from app.wechat.codec import BodyFormat
from config import AccountType, SlowStrategy
from tests.fakewechat import SEND_PATH, FakeWeChat
from tests.handlerkit import SECRET, MakeApp, eventually, fake_api, make_app

__all__ = ["fake_api", "make_app"]


def kept(reason: str) -> float:
    labels = {"account": "default", "reason": reason}
    return REGISTRY.get_sample_value("wx_kept_replies_total", labels) or 0.0


@pytest.fixture
def late_app(make_app: MakeApp, fake_api: FakeWeChat) -> Flask:
    """Slow handlers answered "success" at once, their replies sent by the fake API."""
    return make_app(
        "tests.service_handlers",
        appsecret=SECRET,
        api_base=fake_api.url,
        slow_strategy=SlowStrategy.CUSTOMER_SERVICE,
    )


@pytest.mark.parametrize(
    ("errcode", "name", "reason"),
    [(45015, "ReplyWindowPassed", "window_closed"), (45047, "TooManyReplies", "allowance_used")],
)
def test_a_late_reply_wechat_refuses_waits_for_the_users_next_message(
    late_app: Flask,
    fake_api: FakeWeChat,
    caplog: pytest.LogCaptureFixture,
    errcode: int,
    name: str,
    reason: str,
) -> None:
    before = kept(reason)
    fake_api.fail_next(SEND_PATH, errcode)
    wechat = WeChatClient(late_app, user="oRefused")
    assert wechat.text("sleep 1.2").success
    assert eventually(lambda: "kept for the user's next message" in caplog.text)
    assert f"answered {errcode}, {name}" in caplog.text
    assert "oRefused" not in caplog.text
    assert kept(reason) == before + 1
    assert wechat.text("hello").reply == TextReply("slept 1.2\n\necho: hello")
    assert fake_api.messages == []  # the refused one is not among the delivered


@pytest.fixture
def mini_program(make_app: MakeApp, fake_api: FakeWeChat) -> Flask:
    """A Mini Program: every reply goes by the API, at once."""
    return make_app(
        "tests.service_handlers",
        appsecret=SECRET,
        api_base=fake_api.url,
        account_type=AccountType.MINIPROGRAM,
    )


def test_a_reply_to_a_click_in_its_minute_goes(mini_program: Flask, fake_api: FakeWeChat) -> None:
    wechat = WeChatClient(mini_program, user="oClicker")
    assert wechat.event("CLICK", "MENU_A").success
    assert eventually(lambda: len(fake_api.messages) == 1)
    assert fake_api.messages[0]["text"] == {"content": "clicked MENU_A"}


def test_a_reply_outside_every_window_is_kept_without_asking_wechat(
    mini_program: Flask, fake_api: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    wechat = WeChatClient(mini_program, user="oLongAgo", body_format=BodyFormat.JSON)
    assert wechat.event("CLICK", "MENU_B", CreateTime=int(time.time()) - 120).success
    assert eventually(lambda: "kept for the user's next message" in caplog.text)
    assert "no message from the user within 48 hours is known" in caplog.text
    assert fake_api.calls(SEND_PATH) == []
    # The user writes: the message opens the window, and the kept reply goes with the answer.
    assert wechat.text("back").success
    assert eventually(lambda: len(fake_api.messages) == 2)
    assert sorted(m["text"]["content"] for m in fake_api.messages) == [
        "clicked MENU_B",
        "echo: back",
    ]


@pytest.fixture
def reach_app(make_app: MakeApp, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], WeChatClient]:
    """Users of one app whose window records are written soon after each push."""
    monkeypatch.setattr(window, "FLUSH_DELAY", 0.01)
    app = make_app(appsecret=SECRET)
    api = FakeAPI()
    return lambda user: WeChatClient(app, api=api, user=user)


def test_reachable_knows_the_push_opened_a_window_for_its_user(
    reach_app: Callable[[str], WeChatClient],
) -> None:
    assert reach_app("oAsker").text("reach").reply == TextReply("True 5")


def test_reachable_knows_other_users_by_their_messages(
    reach_app: Callable[[str], WeChatClient],
) -> None:
    asker, other = reach_app("oAsker"), reach_app("oOther")
    assert asker.text("reach oOther").reply == TextReply(
        "False 0 no message from the user within 48 hours is known"
    )
    other.text("hello")
    assert eventually(lambda: asker.text("reach oOther").reply == TextReply("True 5"))
    other.event("unsubscribe")
    assert eventually(
        lambda: asker.text("reach oOther").reply == TextReply("False 0 the user unfollowed")
    )


def test_reachable_counts_what_the_service_sent(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(window, "FLUSH_DELAY", 0.01)
    app = make_app(appsecret=SECRET, slow_strategy=SlowStrategy.CUSTOMER_SERVICE)
    api = FakeAPI()
    reader, asker = WeChatClient(app, api=api, user="oReader"), WeChatClient(app, api=api)
    assert reader.text("long 6000 slowly").success  # three messages by the API
    assert eventually(lambda: len(reader.sent) == 3)
    assert asker.text("reach oReader").reply == TextReply("True 2")


def test_without_an_appsecret_reachable_says_why(make_app: MakeApp) -> None:
    assert WeChatClient(make_app()).text("reach").reply == TextReply(
        "False 0 no WX_APPSECRET: the customer-service API is not set up"
    )


def test_a_users_window_is_written_off_the_push_at_most_once_per_refresh(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(window, "FLUSH_DELAY", 0.01)
    app = make_app(appsecret=SECRET)
    store = app.extensions["wechat"].store
    writes: list[str] = []
    original = store.set

    def set(key: str, value: bytes, ttl: float) -> None:
        writes.append(key.split(":")[0])
        original(key, value, ttl)

    monkeypatch.setattr(store, "set", set)
    wechat = WeChatClient(app, api=FakeAPI(), user="oRegular")
    wechat.text("hello")
    assert eventually(lambda: writes == ["user"])
    for _ in range(3):
        wechat.text("hello again")
    time.sleep(0.2)  # three flushes' worth
    assert writes == ["user"]
