"""What handlers can do, under real gunicorn gevent workers: async handlers, ctx.api, sessions
shared by the workers."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.testing import PushBuilder, PushResult
from app.wechat.replies import TextReply
from config import load_settings
from tests.conftest import AES_KEY, APPID, TOKEN
from tests.fakewechat import FakeWeChat
from tests.handlerkit import SECRET, fake_api
from tests.servers import gunicorn
from tests.servers import request as http_request

__all__ = ["fake_api"]


@pytest.fixture(params=["sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both shared stores: under gevent a Redis socket belongs to the native thread that opened
    it, and handlers (sessions, the API's token) use the store from threads of their own."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    redis_url: str = request.getfixturevalue("redis_url")
    return f"{redis_url}?prefix=handlers-{secrets.token_hex(4)}:"


@pytest.fixture
def env(store_url: str, fake_api: FakeWeChat) -> dict[str, str]:
    return {
        "WX_TOKEN": TOKEN,
        "WX_APPID": APPID,
        "WX_AES_KEY": AES_KEY,
        "WX_APPSECRET": SECRET,
        "WX_API_BASE": fake_api.url,
        "WX_HANDLERS": "tests.ctx_handlers",
        "WX_DEADLINE": "1.5",
        "WX_STORE_URL": store_url,
    }


@pytest.fixture
def server(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with gunicorn(env, workers=2, log=tmp_path / "gunicorn.log") as url:
        yield url


def push(server: str, env: dict[str, str], user: str, content: str) -> PushResult:
    """Send a text push as WeChat does, retrying on a lapse; return the answer that came."""
    wechat = PushBuilder(load_settings(env, dotenv=False), user=user)
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": content}))
    for _ in range(3):
        result = wechat.read(*http_request("POST", server + "/wx", query, body))
        if not result.lapsed and result.status != 0:
            return result
    return result


def test_async_handlers_wait_together_without_blocking_a_worker(
    server: str, env: dict[str, str]
) -> None:
    """Twenty handlers each waiting 1 s on asyncio, on two workers, all answered within WeChat's
    three attempts (4.5 s here); if a handler's loop blocked its worker they would take 10 s."""
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda n: push(server, env, f"o{n}", "async sleep 1"), range(20)))
    assert [r.reply for r in results] == [TextReply("slept 1 asynchronously")] * 20


def test_handlers_on_different_threads_share_a_threading_lock(
    server: str, env: dict[str, str]
) -> None:
    """Eight handlers at once wait for one module-level ``threading.Lock`` and log through one
    log handler (with a lock of its own): each is answered. Under gunicorn's plain ``-k gevent``
    both locks would be gevent's, and a handler waiting on another native thread would never
    wake."""
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda n: push(server, env, f"oLock{n}", "shared lock"), range(8)))
    assert [r.reply for r in results] == [TextReply("held")] * 8


def test_plain_gevent_workers_are_warned_against(env: dict[str, str], tmp_path: Path) -> None:
    log = tmp_path / "plain.log"
    with gunicorn({**env, "GUNICORN_WORKER_CLASS": "gevent"}, workers=1, log=log) as url:
        assert push(url, env, "oPlain", "shared lock").reply == TextReply("held")
    assert "gevent patched threading (gunicorn -k gevent?)" in log.read_text()


def test_handlers_call_the_api_sync_and_async_under_gevent(
    server: str, env: dict[str, str], fake_api: FakeWeChat
) -> None:
    assert push(server, env, "oBoth", "api").reply == TextReply("sent")
    assert push(server, env, "oBoth", "async api").reply == TextReply("sent")
    assert [m["text"]["content"] for m in fake_api.messages] == [
        "sent by the handler",
        "sent by an async handler",
    ]
    assert fake_api.token_requests == 1  # two workers, two clients each: one token


def test_handlers_on_many_threads_share_the_api_client_s_connections(
    server: str, env: dict[str, str], fake_api: FakeWeChat, tmp_path: Path
) -> None:
    """Waves of handlers calling ``ctx.api`` at once, on many threads: every call goes out. A
    kept connection opened on one thread and reused by another would fail under gevent with
    "Cannot switch to a different thread"."""
    for wave in range(3):
        with ThreadPoolExecutor(12) as pool:
            users = [f"oWave{wave}x{n}" for n in range(12)]
            results = list(pool.map(lambda user: push(server, env, user, "api"), users))
        assert [r.reply for r in results] == [TextReply("sent")] * 12
    assert len(fake_api.messages) == 36
    assert "Cannot switch" not in (tmp_path / "gunicorn.log").read_text()


def test_a_session_follows_its_user_from_worker_to_worker(server: str, env: dict[str, str]) -> None:
    replies = [push(server, env, "oWanderer", "count").reply for _ in range(8)]
    assert replies == [TextReply(f"count {n}") for n in range(1, 9)]


def test_pushes_of_one_user_at_once_on_two_workers_lose_no_update(
    server: str, env: dict[str, str]
) -> None:
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: push(server, env, "oBusy", "count 0.1"), range(4)))
    assert sorted(str(r.reply) for r in results) == sorted(
        str(TextReply(f"count {n}")) for n in range(1, 5)
    )
    assert push(server, env, "oBusy", "peek").reply == TextReply("count is 4")


def test_workers_close_their_loops_cleanly_on_exit(
    env: dict[str, str], tmp_path: Path, fake_api: FakeWeChat
) -> None:
    log = tmp_path / "exit.log"
    with gunicorn(env, workers=2, log=log) as url:
        for user in ("oA", "oB", "oC", "oD"):
            assert push(url, env, user, "async api").reply == TextReply("sent")
    text = log.read_text()
    assert "Traceback" not in text
    assert "not closed cleanly" not in text
    assert "ResourceWarning" not in text
    assert "MonkeyPatchWarning" not in text  # nothing the app imports is loaded before patching


def test_a_worker_stopped_mid_run_delivers_the_reply_before_it_exits(
    env: dict[str, str], tmp_path: Path, fake_api: FakeWeChat
) -> None:
    """SIGTERM while a handler runs past its push's "success": the worker lets it finish and
    sends its reply by the API before exiting (``worker_exit``), rather than dropping it."""
    env = {**env, "WX_SLOW_STRATEGY": "customer_service"}
    with gunicorn(env, workers=1, log=tmp_path / "stop.log") as url:
        answered = push(url, env, "oStopped", "async sleep 2.5")
        assert answered.status == 200 and answered.reply is None  # "success" at the deadline
        assert fake_api.messages == []  # stopped before the handler finished
    assert [m["text"]["content"] for m in fake_api.messages] == ["slept 2.5 asynchronously"]


def test_a_reply_owed_after_success_survives_the_death_of_its_worker(
    env: dict[str, str], tmp_path: Path, fake_api: FakeWeChat
) -> None:
    """The push is answered "success" at the deadline and its handler keeps running; then its
    worker is killed with SIGKILL. No retry will come, yet the reply is owed: another worker
    adopts the push once the dead one shows no life, runs the handler again and sends the reply
    by the API, once."""
    env = {**env, "WX_SLOW_STRATEGY": "customer_service", "WX_DEADLINE": "1.0"}
    marker = tmp_path / "first-run.pid"
    with gunicorn(env, workers=2, log=tmp_path / "owed.log") as url:
        answered = push(url, env, "oOwed", f"stall once {marker}")
        assert answered.status == 200 and answered.reply is None  # "success" at the deadline
        time.sleep(0.3)  # the push is kept in the store in the background
        os.kill(int(marker.read_text()), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not fake_api.messages and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)  # nothing else may follow
    assert [m["text"]["content"] for m in fake_api.messages] == ["ran again"]
    assert fake_api.messages[0]["touser"] == "oOwed"
