"""Slow handlers: the deadline holds, retries get the late result, nothing runs twice or is lost.

These tests use a 1-second deadline. Time bounds are generous (a full second of slack) and only
tell "answered at the deadline" apart from "waited for a handler that sleeps far longer".
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

from app import create_app
from app.lifecycle import ledger as ledger_module
from app.lifecycle import service as service_module
from app.lifecycle.service import WeChatService
from app.logs import pseudonym
from app.testing import PushResult, WeChatClient
from app.wechat.codec import BodyFormat
from app.wechat.messages import parse_message
from app.wechat.replies import TextReply
from app.wechat.timing import LEASE_TTL
from config import Settings, SlowStrategy
from tests import service_handlers
from tests.conftest import APPID
from tests.fakewechat import FakeWeChat

SLACK = 1.0


@pytest.fixture
def make_app(settings: Settings) -> Iterator[object]:
    apps: list[Flask] = []

    def make(**changes: object) -> Flask:
        app = create_app(
            dataclasses.replace(settings, handlers="tests.service_handlers", **changes)  # type: ignore[arg-type]
        )
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["wechat"].close()


def attempts(
    wechat: WeChatClient, content: str, count: int, user: str
) -> list[tuple[PushResult, float]]:
    """Send one push ``count`` times in a row, as WeChat's retries do, timing each attempt."""
    push = {
        "ToUserName": wechat.account,
        "FromUserName": user,
        "CreateTime": int(time.time()),
        "MsgType": "text",
        "Content": content,
        "MsgId": abs(hash((user, content))) % 10**12,
    }
    query, body = wechat.build(push)
    timed = []
    for _ in range(count):
        started = time.monotonic()
        result = wechat.post(query, body)
        timed.append((result, time.monotonic() - started))
    return timed


def runs(user: str) -> int:
    return sum(n for key, n in service_handlers.calls.items() if key.startswith(f"msg:{user}:"))


def test_retry_strategy_answers_a_retry_with_the_late_reply(make_app: object) -> None:
    app = make_app()  # type: ignore[operator]
    wechat = WeChatClient(app)
    (first, first_took), (second, _), (third, _) = attempts(wechat, "sleep 1.5", 3, "oRetry")
    assert first.lapsed
    assert first_took < 1.0 + SLACK
    assert second.reply == TextReply("slept 1.5")
    assert third.body == second.body
    assert runs("oRetry") == 1


def test_a_handler_outliving_its_lease_time_is_never_taken_over(
    make_app: object, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()  # type: ignore[operator]
    wechat = WeChatClient(app, user="oLong")
    push = wechat.complete({"MsgType": "text", "Content": f"sleep {LEASE_TTL + 3}"})
    query, body = wechat.build(push)
    assert wechat.post(query, body).lapsed
    time.sleep(LEASE_TTL - 0.5)  # attempt 2 waits past the time an unrenewed lease runs out
    assert wechat.post(query, body).lapsed
    time.sleep(2.0)
    assert wechat.post(query, body).reply == TextReply(f"slept {LEASE_TTL + 3}")
    assert runs("oLong") == 1
    assert "runs the handler again" not in caplog.text


def test_the_last_attempt_answers_success_and_the_reply_waits_for_the_next_message(
    make_app: object,
) -> None:
    app = make_app()  # type: ignore[operator]
    wechat = WeChatClient(app, user="oLate")
    timed = attempts(wechat, "sleep 3.5", 3, "oLate")
    assert [r.lapsed for r, _ in timed] == [True, True, False]
    assert timed[2][0].success
    assert all(took < 1.0 + SLACK for _, took in timed)
    time.sleep(1.5)  # the handler finishes; no AppSecret, so the reply is kept
    follow_up = wechat.text("are you there?")
    assert follow_up.reply == TextReply("slept 3.5\n\necho: are you there?")
    assert wechat.text("again").reply == TextReply("echo: again")
    assert runs("oLate") == 3


def test_customer_service_strategy_answers_success_at_the_first_deadline(
    make_app: object,
) -> None:
    app = make_app(slow_strategy=SlowStrategy.CUSTOMER_SERVICE)  # type: ignore[operator]
    wechat = WeChatClient(app, user="oCS")
    (first, took), (retry, _) = attempts(wechat, "sleep 1.5", 2, "oCS")
    assert first.success
    assert took < 1.0 + SLACK
    assert retry.body == b"success"
    time.sleep(1.0)
    assert wechat.text("next").reply == TextReply("slept 1.5\n\necho: next")


def test_slow_path_log_lines_name_the_user_by_pseudonym_only(
    make_app: object, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(slow_strategy=SlowStrategy.CUSTOMER_SERVICE)  # type: ignore[operator]
    attempts(WeChatClient(app, user="oPrivate"), "sleep 1.5", 1, "oPrivate")
    time.sleep(1.0)
    assert "missed the deadline" in caplog.text
    assert "kept for the user's next message" in caplog.text
    assert "oPrivate" not in caplog.text
    assert caplog.text.count(pseudonym("oPrivate")) >= 2


def test_a_kept_reply_is_stored_under_a_hash_of_the_openid(
    make_app: object, tmp_path: Path
) -> None:
    app = make_app(  # type: ignore[operator]
        slow_strategy=SlowStrategy.CUSTOMER_SERVICE, store_url=f"sqlite:///{tmp_path}/s.db"
    )
    attempts(WeChatClient(app, user="oKeptPrivately"), "sleep 1.5", 1, "oKeptPrivately")
    time.sleep(1.0)
    with sqlite3.connect(tmp_path / "s.db") as db:
        keys = [key for (key,) in db.execute("SELECT key FROM store")]
    assert any(key.startswith("user:") for key in keys)
    assert not [key for key in keys if key.startswith("user:") and "oKeptPrivately" in key]


def test_a_handler_outliving_the_ledger_still_delivers_its_reply(make_app: object) -> None:
    app = make_app(ledger_ttl=1.2)  # type: ignore[operator]  # below the minimum, to be quick
    wechat = WeChatClient(app, user="oForgotten")
    ((first, _),) = attempts(wechat, "sleep 1.5", 1, "oForgotten")
    assert first.lapsed
    time.sleep(1.0)  # finished after the ledger forgot the push; WeChat did not come back
    assert wechat.text("next").reply == TextReply("slept 1.5\n\necho: next")


def test_off_strategy_drops_the_late_reply(make_app: object) -> None:
    app = make_app(slow_strategy=SlowStrategy.OFF)  # type: ignore[operator]
    wechat = WeChatClient(app, user="oOff")
    ((first, _),) = attempts(wechat, "sleep 1.5", 1, "oOff")
    assert first.success
    time.sleep(1.0)
    assert wechat.text("next").reply == TextReply("echo: next")


def test_a_slow_handler_does_not_block_other_pushes(make_app: object) -> None:
    app = make_app()  # type: ignore[operator]
    slow = WeChatClient(app, user="oSlow")
    fast = WeChatClient(app, user="oFast")
    started = time.monotonic()
    assert slow.text("sleep 0.8").reply == TextReply("slept 0.8")
    # The fast push is answered while the slow handler still holds its thread.
    with_slow_running = attempts(slow, "sleep 2.5", 1, "oSlow2")
    assert with_slow_running[0][0].lapsed
    assert fast.text("quick").reply == TextReply("echo: quick")
    assert time.monotonic() - started < 0.8 + 1.0 + 2 * SLACK


def test_time_queued_behind_nginx_counts_against_the_deadline(make_app: object) -> None:
    app = make_app()  # type: ignore[operator]
    wechat = WeChatClient(app, user="oQueued")
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "sleep 0.5"}))
    queued_since = f"t={time.time() - 0.7:.3f}"
    response = app.test_client().post(
        "/wx", query_string=query, data=body, headers={"X-Request-Start": queued_since}
    )
    assert response.status_code == 503  # 0.3 s were left, the handler needs 0.5 s
    fresh = wechat.send({"MsgType": "text", "Content": "sleep 0.5"})
    assert fresh.reply == TextReply("slept 0.5")


@pytest.fixture
def fake_api() -> Iterator[FakeWeChat]:
    with FakeWeChat(APPID, "0123456789abcdef0123456789abcdef") as fake:
        yield fake


def _wait_for_messages(fake: FakeWeChat, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)


def test_late_reply_goes_by_the_customer_service_api_once(
    make_app: object, fake_api: FakeWeChat
) -> None:
    app = make_app(  # type: ignore[operator]
        appsecret=fake_api.secret,
        api_base=fake_api.url,
        slow_strategy=SlowStrategy.CUSTOMER_SERVICE,
    )
    wechat = WeChatClient(app, user="oCustomer")
    (first, took), (retry, _) = attempts(wechat, "sleep 1.5", 2, "oCustomer")
    assert first.success
    assert took < 1.0 + SLACK
    assert retry.body == b"success"
    _wait_for_messages(fake_api, 1)
    time.sleep(0.3)  # nothing else may follow
    assert fake_api.messages == [
        {"touser": "oCustomer", "msgtype": "text", "text": {"content": "slept 1.5"}}
    ]
    assert fake_api.typing == [{"touser": "oCustomer", "command": "Typing"}]
    assert fake_api.token_requests == 1
    assert runs("oCustomer") == 1


def test_a_push_taken_over_from_a_dead_process_is_delivered_late_by_the_api(
    make_app: object, fake_api: FakeWeChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process that claimed attempt 1 died before writing the user's window to the store;
    the retry that takes the push over notes the window itself, so its late reply goes by the
    customer-service API instead of waiting for the user's next message."""
    app = make_app(  # type: ignore[operator]
        appsecret=fake_api.secret,
        api_base=fake_api.url,
        slow_strategy=SlowStrategy.CUSTOMER_SERVICE,
    )
    wechat = WeChatClient(app, user="oOrphan")
    push = {
        "ToUserName": wechat.account,
        "FromUserName": "oOrphan",
        "CreateTime": int(time.time()),
        "MsgType": "text",
        "Content": "sleep 1.2",
        "MsgId": 424242,
    }
    query, body = wechat.build(push)
    service: WeChatService = app.extensions["wechat"].service()
    key = parse_message({name: str(value) for name, value in push.items()}).push_key
    with monkeypatch.context() as past:  # attempt 1 was claimed a lease ago, by a process now dead
        claimed = time.time() - LEASE_TTL - 1
        past.setattr(ledger_module, "time", SimpleNamespace(time=lambda: claimed))
        assert service.ledger.begin(key).attempt == 1

    retry = wechat.post(query, body)

    assert retry.body == b"success"  # taken over, then "success" at the deadline
    _wait_for_messages(fake_api, 1)
    assert fake_api.messages == [
        {"touser": "oOrphan", "msgtype": "text", "text": {"content": "slept 1.2"}}
    ]
    assert runs("oOrphan") == 1


def test_retry_strategy_delivers_by_api_after_the_last_attempt(
    make_app: object, fake_api: FakeWeChat
) -> None:
    app = make_app(appsecret=fake_api.secret, api_base=fake_api.url)  # type: ignore[operator]
    wechat = WeChatClient(app, user="oRetryApi")
    timed = attempts(wechat, "sleep 3.5", 3, "oRetryApi")
    assert [r.lapsed for r, _ in timed] == [True, True, False]
    _wait_for_messages(fake_api, 1)
    assert [m["text"]["content"] for m in fake_api.messages] == ["slept 3.5"]


def test_mini_program_content_goes_by_the_api(make_app: object, fake_api: FakeWeChat) -> None:
    app = make_app(appsecret=fake_api.secret, api_base=fake_api.url)  # type: ignore[operator]
    result = WeChatClient(app, user="oMini", body_format=BodyFormat.JSON).text("hello")
    assert result.body == b"success"
    _wait_for_messages(fake_api, 1)
    assert fake_api.messages == [
        {"touser": "oMini", "msgtype": "text", "text": {"content": "echo: hello"}}
    ]


def test_mini_program_content_without_appsecret_is_never_kept_for_a_passive_reply(
    make_app: object, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()  # type: ignore[operator]  # an Official Account setting, a JSON push
    result = WeChatClient(app, user="oMiniNoSecret", body_format=BodyFormat.JSON).text("hello")
    assert result.body == b"success"
    assert "a Mini Program needs WX_APPSECRET" in caplog.text
    assert "oMiniNoSecret" not in caplog.text
    later = WeChatClient(app, user="oMiniNoSecret").text("next")
    assert later.reply == TextReply("echo: next")


@pytest.mark.parametrize(
    ("age", "expected"),
    [(8, "lapsed"), (10, "success")],
    ids=["second-attempt", "third-attempt"],
)
def test_wechat_s_last_attempt_is_told_by_its_arrival_since_create_time(
    make_app: object, age: int, expected: str
) -> None:
    # An attempt 8-9 s after the message is WeChat's second: it must lapse so the third can
    # carry the reply. Judged at its deadline (1 s later here) instead of on arrival, it was
    # taken for the last and answered success, and every handler of 9.5-14.5 s went out late.
    app = make_app()  # type: ignore[operator]
    wechat = WeChatClient(app, user=f"oAge{age}")
    push = wechat.complete({"MsgType": "text", "Content": "sleep 1.5"})
    push["CreateTime"] = int(time.time()) - age
    result = wechat.post(*wechat.build(push))
    assert ("lapsed" if result.lapsed else "success" if result.success else "other") == expected


class _FakeClock:
    """Stands in for the service module's ``time``: sleeping moves the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 100.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_following_attempt_polls_up_to_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pauses grew to 250 ms and polling stopped at the last one that fitted, so an attempt
    # could give away a quarter of its window and lapse though the run finished in time.
    clock = _FakeClock()
    monkeypatch.setattr(service_module, "time", clock)
    deadline = clock.now + 1.0
    polls = [clock.now for _ in WeChatService._polls(deadline)]
    assert polls[0] == 100.0
    assert deadline - polls[-1] <= 0.005 + 1e-9
    assert max(b - a for a, b in zip(polls, polls[1:], strict=False)) <= 0.25 + 1e-9
