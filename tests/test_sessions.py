"""Per-user sessions through pushes: kept, isolated, serialised, never applied twice."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask

from app import TextReply
from app.testing import WeChatClient
from app.wechat.identity import PushKey
from app.wechat.timing import LEASE_TTL
from config import AccountSettings
from tests.conftest import APPID
from tests.handlerkit import MakeApp, eventually, make_app

__all__ = ["make_app"]

OPERATIONS = ("get", "set", "add", "add_and_peek", "take", "delete", "lock")


def counting(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count the store operations the app makes from now on (outer calls only)."""
    store = app.extensions["wechat"].store
    calls: Counter[str] = Counter()
    depth = [0]
    for name in OPERATIONS:
        original = getattr(store, name)

        def count(
            *args: object, _name: str = name, _original: object = original, **kwargs: object
        ) -> object:
            calls[_name] += depth[0] == 0
            depth[0] += 1
            try:
                return _original(*args, **kwargs)  # type: ignore[operator]
            finally:
                depth[0] -= 1

        monkeypatch.setattr(store, name, count)
    return calls


def test_a_session_keeps_a_users_state_between_messages(make_app: MakeApp) -> None:
    app = make_app()
    alice, bob = WeChatClient(app, user="oAlice"), WeChatClient(app, user="oBob")
    assert [alice.text("count").reply for _ in range(3)] == [
        TextReply("count 1"),
        TextReply("count 2"),
        TextReply("count 3"),
    ]
    assert bob.text("count").reply == TextReply("count 1")
    assert alice.session() == {"count": 3}
    assert bob.session() == {"count": 1}


def test_each_account_keeps_its_own_session_of_a_user(make_app: MakeApp) -> None:
    shop = AccountSettings(
        name="shop",
        token="shopToken2026",
        appid="wx00000000000000a1",
        handlers="tests.ctx_handlers",
    )
    app = make_app(accounts=(shop,))
    default, other = (
        WeChatClient(app, user="oBoth"),
        WeChatClient(app, account="shop", user="oBoth"),
    )
    assert [default.text("count").reply, default.text("count").reply] == [
        TextReply("count 1"),
        TextReply("count 2"),
    ]
    assert other.text("count").reply == TextReply("count 1")
    assert (default.session(), other.session()) == ({"count": 2}, {"count": 1})


def test_a_session_is_stored_under_a_hash_of_the_openid(make_app: MakeApp) -> None:
    app = make_app()
    WeChatClient(app, user="oHashedUser").text("count")
    store = app.extensions["wechat"].store
    key = f"session:{APPID}:{hashlib.sha256(b'oHashedUser').hexdigest()}"
    assert store.get(key) is not None


@pytest.mark.parametrize("content", ["context", "hello"])
@pytest.mark.parametrize("handlers", ["tests.ctx_handlers", "tests.ctx_handlers:layered"])
def test_a_handler_that_does_not_touch_its_session_costs_no_round_trip(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch, handlers: str, content: str
) -> None:
    app = make_app(handlers)
    calls = counting(app, monkeypatch)
    assert not WeChatClient(app).text(content).success
    assert sum(calls.values()) == 2, calls  # the claim and the answer, as without ctx


def test_a_handler_that_only_reads_its_session_writes_nothing(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    wechat = WeChatClient(app)
    wechat.text("count")
    calls = counting(app, monkeypatch)
    assert wechat.text("peek").reply == TextReply("count is 1")
    assert calls == {"add_and_peek": 1, "lock": 1, "get": 1, "add": 1}, calls


def test_a_failing_handler_leaves_the_session_as_it_found_it(make_app: MakeApp) -> None:
    wechat = WeChatClient(make_app())
    wechat.text("count")
    assert wechat.text("count then fail").success
    assert wechat.session() == {"count": 1}


def test_a_value_json_cannot_store_is_logged_and_not_saved(
    make_app: MakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    wechat = WeChatClient(make_app(), user="oObject")
    assert wechat.text("unstorable").reply == TextReply("kept an object")
    assert "not saved: it holds a value JSON cannot store" in caplog.text
    assert "oObject" not in caplog.text
    assert wechat.session() == {}


def test_two_pushes_of_one_user_at_once_lose_no_update(make_app: MakeApp) -> None:
    """Each handler reads, sleeps, then writes: without the user's lock one update is lost."""
    app = make_app()
    wechat = WeChatClient(app, user="oTwoAtOnce")
    pushes = [wechat.build(wechat.complete({"MsgType": "text", "Content": "count 0.3"}))]
    pushes.append(wechat.build(wechat.complete({"MsgType": "text", "Content": "count 0.3"})))
    threads = [threading.Thread(target=wechat.post, args=push) for push in pushes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert eventually(lambda: wechat.session() == {"count": 2})


def test_a_session_expires_after_its_ttl(make_app: MakeApp) -> None:
    wechat = WeChatClient(make_app(session_ttl=1))
    assert wechat.text("count").reply == TextReply("count 1")
    time.sleep(1.1)
    assert wechat.session() == {}
    assert wechat.text("count").reply == TextReply("count 1")


@pytest.fixture
def crashed_after_saving(make_app: MakeApp) -> Iterator[tuple[WeChatClient, dict[str, str], bytes]]:
    """A push whose handler saved its session change, in a process that then died before the
    result was recorded: the ledger shows the claim, no lease, no result, no answer."""
    app = make_app()
    wechat = WeChatClient(app, user="oCrashed")
    assert wechat.text("count").reply == TextReply("count 1")  # an earlier push
    push = wechat.complete({"MsgType": "text", "Content": "count"})
    query, body = wechat.build(push)
    assert wechat.post(query, body).reply == TextReply("count 2")
    store = app.extensions["wechat"].store
    key = PushKey("msg", "oCrashed", str(push["MsgId"]), int(push["CreateTime"]))
    ledger = f"ledger:{APPID}:{key.stored}:"
    for part in ("answer", "result", "lease"):
        store.delete(ledger + part)
    store.set(ledger + "attempt:1", f"{time.time() - LEASE_TTL - 1:.3f}".encode(), 60)
    yield wechat, query, body


def test_a_takeover_after_a_crash_does_not_apply_the_session_change_twice(
    crashed_after_saving: tuple[WeChatClient, dict[str, str], bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    wechat, query, body = crashed_after_saving
    retry = wechat.post(query, body)
    assert "runs the handler again" in caplog.text  # the takeover did happen
    assert retry.reply == TextReply("count 2")  # the first run's answer, from what it found
    assert wechat.session() == {"count": 2}
    assert "already holds the change of an earlier run" in caplog.text


def test_a_takeover_after_another_push_changed_the_session_saves_nothing(
    crashed_after_saving: tuple[WeChatClient, dict[str, str], bytes],
) -> None:
    wechat, query, body = crashed_after_saving
    assert wechat.text("count").reply == TextReply("count 3")
    assert wechat.post(query, body).reply == TextReply("count 4")  # as the session is now
    assert wechat.session() == {"count": 3}
