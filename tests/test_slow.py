"""Slow handlers: the deadline holds, retries get the late result, nothing runs twice or is lost.

These tests use a 1-second deadline. Most run the app on a :class:`ManualClock`, on which the
``sleep`` handler sleeps too: each attempt waits out its deadline when the test advances the
clock, so the slow path is played in a fixed order without sleeping. The few on real time keep
generous bounds (a full second of slack) that only tell "answered at the deadline" apart from
"waited for a handler that sleeps far longer".
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.lifecycle import service as service_module
from app.lifecycle.clock import SYSTEM_CLOCK, Clock
from app.lifecycle.service import WeChatService
from app.logs import pseudonym
from app.testing import ManualClock, PushResult, WeChatClient
from app.wechat.codec import BodyFormat
from app.wechat.messages import parse_message
from app.wechat.replies import TextReply
from app.wechat.timing import LEASE_TTL
from config import Settings, SlowStrategy
from tests import service_handlers
from tests.conftest import APPID
from tests.fakewechat import FakeWeChat

SLACK = 1.0
#: The settings' WX_DEADLINE (tests/conftest.py).
DEADLINE = 1.0


@pytest.fixture
def make_app(settings: Settings) -> Iterator[object]:
    apps: list[Flask] = []

    def make(*, clock: Clock = SYSTEM_CLOCK, **changes: object) -> Flask:
        app = create_app(
            dataclasses.replace(settings, handlers="tests.service_handlers", **changes),  # type: ignore[arg-type]
            clock=clock,
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


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The clock a test's app runs on, which the ``sleep`` handler sleeps on too."""
    manual = ManualClock()
    monkeypatch.setattr(service_handlers, "clock", manual)
    return manual


def push_of(wechat: WeChatClient, content: str) -> tuple[dict[str, str], bytes]:
    """The query and body of one text push, built once so that retries repeat it."""
    return wechat.build(wechat.complete({"MsgType": "text", "Content": content}))


def out_waited(
    clock: ManualClock, wechat: WeChatClient, push: tuple[dict[str, str], bytes]
) -> PushResult:
    """One attempt that waits out its whole deadline while the handler sleeps on."""
    pending = wechat.post_in_background(*push)
    clock.until_waiting(2)  # the attempt, and the handler asleep
    clock.advance(DEADLINE)
    return pending.result(timeout=5)


def wake_handler(clock: ManualClock, app: Flask, seconds: float) -> None:
    """Let the sleeping handler's remaining ``seconds`` pass, and what its run left behind be
    done (late delivery, a kept reply)."""
    clock.advance(seconds)
    service = app.extensions["wechat"].service()
    limit = time.monotonic() + 5
    while not service.pool.idle():
        assert time.monotonic() < limit, "the run and its late work did not finish"
        time.sleep(0.005)


def runs(user: str) -> int:
    return sum(n for key, n in service_handlers.calls.items() if key.startswith(f"msg:{user}:"))


def test_retry_strategy_answers_a_retry_with_the_late_reply(
    make_app: object, clock: ManualClock
) -> None:
    app = make_app(clock=clock)  # type: ignore[operator]
    wechat = WeChatClient(app, user="oRetry")
    push = push_of(wechat, "sleep 1.5")
    assert out_waited(clock, wechat, push).lapsed
    second = wechat.post_in_background(*push)
    clock.until_waiting(2)
    clock.advance(0.5)  # the handler finishes while the retry waits
    assert second.result(timeout=5).reply == TextReply("slept 1.5")
    assert wechat.post(*push).body == second.result().body
    assert runs("oRetry") == 1


def test_a_handler_outliving_its_lease_time_is_never_taken_over(
    make_app: object, caplog: pytest.LogCaptureFixture
) -> None:
    # On real time: what keeps the push from a takeover is the lease renewed in the store,
    # whose expiry is the store's own (real seconds), not the service's clock.
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
    make_app: object, clock: ManualClock
) -> None:
    app = make_app(clock=clock)  # type: ignore[operator]
    wechat = WeChatClient(app, user="oLate")
    push = push_of(wechat, "sleep 3.5")
    answers = [out_waited(clock, wechat, push) for _ in range(3)]
    assert [a.lapsed for a in answers] == [True, True, False]
    assert answers[2].success
    wake_handler(clock, app, 0.5)  # no AppSecret, so the reply is kept
    follow_up = wechat.text("are you there?")
    assert follow_up.reply == TextReply("slept 3.5\n\necho: are you there?")
    assert wechat.text("again").reply == TextReply("echo: again")
    assert runs("oLate") == 3


def test_customer_service_strategy_answers_success_at_the_first_deadline(
    make_app: object, clock: ManualClock
) -> None:
    app = make_app(slow_strategy=SlowStrategy.CUSTOMER_SERVICE, clock=clock)  # type: ignore[operator]
    wechat = WeChatClient(app, user="oCS")
    push = push_of(wechat, "sleep 1.5")
    assert out_waited(clock, wechat, push).success
    assert wechat.post(*push).body == b"success"  # the retry, answered from the ledger at once
    wake_handler(clock, app, 0.5)
    assert wechat.text("next").reply == TextReply("slept 1.5\n\necho: next")


def test_slow_path_log_lines_name_the_user_by_pseudonym_only(
    make_app: object, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(slow_strategy=SlowStrategy.CUSTOMER_SERVICE, clock=clock)  # type: ignore[operator]
    wechat = WeChatClient(app, user="oPrivate")
    out_waited(clock, wechat, push_of(wechat, "sleep 1.5"))
    wake_handler(clock, app, 0.5)
    assert "missed the deadline" in caplog.text
    assert "kept for the user's next message" in caplog.text
    assert "oPrivate" not in caplog.text
    assert caplog.text.count(pseudonym("oPrivate")) >= 2


def test_a_kept_reply_is_stored_under_a_hash_of_the_openid(
    make_app: object, clock: ManualClock, tmp_path: Path
) -> None:
    app = make_app(  # type: ignore[operator]
        slow_strategy=SlowStrategy.CUSTOMER_SERVICE,
        store_url=f"sqlite:///{tmp_path}/s.db",
        clock=clock,
    )
    wechat = WeChatClient(app, user="oKeptPrivately")
    out_waited(clock, wechat, push_of(wechat, "sleep 1.5"))
    wake_handler(clock, app, 0.5)
    with sqlite3.connect(tmp_path / "s.db") as db:
        keys = [key for (key,) in db.execute("SELECT key FROM store")]
    assert any(key.startswith("user:") for key in keys)
    assert not [key for key in keys if key.startswith("user:") and "oKeptPrivately" in key]


def test_a_handler_outliving_the_ledger_still_delivers_its_reply(
    make_app: object, clock: ManualClock
) -> None:
    app = make_app(ledger_ttl=1.2, clock=clock)  # type: ignore[operator]  # below the minimum
    wechat = WeChatClient(app, user="oForgotten")
    assert out_waited(clock, wechat, push_of(wechat, "sleep 1.5")).lapsed
    # It finishes after the ledger forgot the push, and WeChat did not come back.
    wake_handler(clock, app, 0.5)
    assert wechat.text("next").reply == TextReply("slept 1.5\n\necho: next")


def test_off_strategy_drops_the_late_reply(make_app: object, clock: ManualClock) -> None:
    app = make_app(slow_strategy=SlowStrategy.OFF, clock=clock)  # type: ignore[operator]
    wechat = WeChatClient(app, user="oOff")
    assert out_waited(clock, wechat, push_of(wechat, "sleep 1.5")).success
    wake_handler(clock, app, 0.5)
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
    make_app: object, clock: ManualClock, fake_api: FakeWeChat
) -> None:
    app = make_app(  # type: ignore[operator]
        appsecret=fake_api.secret,
        api_base=fake_api.url,
        slow_strategy=SlowStrategy.CUSTOMER_SERVICE,
        clock=clock,
    )
    wechat = WeChatClient(app, user="oCustomer")
    push = push_of(wechat, "sleep 1.5")
    assert out_waited(clock, wechat, push).success
    assert wechat.post(*push).body == b"success"
    wake_handler(clock, app, 0.5)
    assert fake_api.messages == [
        {"touser": "oCustomer", "msgtype": "text", "text": {"content": "slept 1.5"}}
    ]
    assert fake_api.typing == [{"touser": "oCustomer", "command": "Typing"}]
    assert fake_api.token_requests == 1
    assert runs("oCustomer") == 1


def test_a_push_taken_over_from_a_dead_process_is_delivered_late_by_the_api(
    make_app: object, clock: ManualClock, fake_api: FakeWeChat
) -> None:
    """The process that claimed attempt 1 died before writing the user's window to the store;
    the retry that takes the push over notes the window itself, so its late reply goes by the
    customer-service API instead of waiting for the user's next message."""
    app = make_app(  # type: ignore[operator]
        appsecret=fake_api.secret,
        api_base=fake_api.url,
        slow_strategy=SlowStrategy.CUSTOMER_SERVICE,
        clock=clock,
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
    assert service.ledger.begin(key).attempt == 1  # by a process that then died
    clock.advance(LEASE_TTL + 1)

    retry = out_waited(clock, wechat, (query, body))

    assert retry.body == b"success"  # taken over, then "success" at the deadline
    wake_handler(clock, app, 0.2)
    assert fake_api.messages == [
        {"touser": "oOrphan", "msgtype": "text", "text": {"content": "slept 1.2"}}
    ]
    assert runs("oOrphan") == 1


def test_retry_strategy_delivers_by_api_after_the_last_attempt(
    make_app: object, clock: ManualClock, fake_api: FakeWeChat
) -> None:
    app = make_app(appsecret=fake_api.secret, api_base=fake_api.url, clock=clock)  # type: ignore[operator]
    wechat = WeChatClient(app, user="oRetryApi")
    push = push_of(wechat, "sleep 3.5")
    assert [out_waited(clock, wechat, push).lapsed for _ in range(3)] == [True, True, False]
    wake_handler(clock, app, 0.5)
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


class _SleepAdvances(ManualClock):
    """A clock that a sleep moves on at once: nothing else waits on it here."""

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)


def test_a_following_attempt_polls_up_to_its_deadline() -> None:
    # Pauses grew to 250 ms and polling stopped at the last one that fitted, so an attempt
    # could give away a quarter of its window and lapse though the run finished in time.
    clock = _SleepAdvances()
    start = clock.monotonic()
    deadline = start + 1.0
    polls = [clock.monotonic() for _ in service_module._polls(clock, deadline)]
    assert polls[0] == start
    assert deadline - polls[-1] <= 0.005 + 1e-9
    assert max(b - a for a, b in zip(polls, polls[1:], strict=False)) <= 0.25 + 1e-9
