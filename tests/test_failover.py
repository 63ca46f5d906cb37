"""A failing shared store degrades to a local one, loudly, and comes back when it recovers."""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from app import create_app
from app.lifecycle.ledger import SUCCESS, Ledger, Result
from app.store import MemoryStore, RedisStore, StoreError, open_shared_store
from app.store.failover import FailoverStore
from app.testing import WeChatClient
from app.wechat.identity import PushKey
from app.wechat.replies import TextReply
from config import Settings
from tests import service_handlers
from tests.servers import private_redis, redis_server_available


class FlakyStore(MemoryStore):
    """A memory store that can be switched off, like a Redis that went away."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreError("flaky store is down")

    def get(self, key: str) -> bytes | None:
        self._check()
        return super().get(key)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        self._check()
        return super().add(key, value, ttl)

    @contextmanager
    def lock(self, name: str, *, ttl: float, wait: float) -> Iterator[bool]:
        self._check()
        with super().lock(name, ttl=ttl, wait=wait) as held:
            yield held


def test_unreachable_redis_degrades_to_local_store(caplog: pytest.LogCaptureFixture) -> None:
    store = FailoverStore(RedisStore("redis://127.0.0.1:1/0", timeout=0.2), MemoryStore())
    with caplog.at_level(logging.ERROR, logger="app.store.failover"):
        assert store.add("k", b"v", 10) is True
        assert store.add("k", b"v", 10) is False
        assert store.take("k") == b"v"
        with store.lock("l", ttl=1, wait=0) as held:
            assert held is True
    assert store.degraded
    degraded_lines = [r for r in caplog.records if "DEGRADED" in r.getMessage()]
    assert len(degraded_lines) == 1
    assert "127.0.0.1:1" in degraded_lines[0].getMessage()
    with pytest.raises(StoreError):
        store.ping()
    store.close()


def test_primary_is_used_again_after_the_pause() -> None:
    primary = FlakyStore()
    store = FailoverStore(primary, MemoryStore(), retry_after=0.1)
    primary.down = True
    assert store.add("k", b"local", 10) is True
    assert store.degraded
    primary.down = False
    time.sleep(0.15)
    assert not store.degraded
    assert store.add("new", b"shared", 10) is True
    assert primary.get("new") == b"shared"


def test_what_was_claimed_during_the_outage_stays_claimed_after_it() -> None:
    # A push claimed in the fallback while the primary was down, retried once it is back, was
    # claimed a second time in the primary: its handler ran twice.
    primary = FlakyStore()
    store = FailoverStore(primary, MemoryStore(), retry_after=0.1)
    primary.down = True
    assert store.add("claim", b"1", 10) is True
    store.set("result", b"done", 10)
    primary.down = False
    time.sleep(0.15)
    assert store.add("claim", b"1", 10) is False
    assert store.get("result") == b"done"


def test_after_an_outage_peeks_takes_and_deletes_consult_the_fallback_too() -> None:
    primary = FlakyStore()
    store = FailoverStore(primary, MemoryStore(), retry_after=0.1)
    primary.down = True
    assert store.add("claim", b"1", 10) is True
    for key in ("kept", "owed", "gone"):
        store.set(key, b"x", 10)
    primary.down = False
    time.sleep(0.15)
    assert store.add_and_peek("claim", b"1", 10, "kept") == (False, b"x")
    assert store.add_and_peek("other", b"1", 10, "kept") == (True, b"x")
    assert store.take("owed") == b"x"
    assert store.take("owed") is None
    store.delete("gone")
    assert store.get("gone") is None


@pytest.mark.parametrize("down_at", ["after-claim", "before-claim"])
def test_a_delivery_is_never_lost_when_the_store_changes_mid_push(down_at: str) -> None:
    # The obligation to deliver was written at the claim and taken at the answer: when the
    # store failed over in between, the answer looked in the other store, found nothing and
    # the reply was silently dropped.
    primary = FlakyStore()
    ledger = Ledger(FailoverStore(primary, MemoryStore(), retry_after=0.1), namespace="n", ttl=60)
    push = PushKey("msg", "oUser", "1")
    primary.down = down_at == "before-claim"
    assert ledger.begin(push).attempt == 1
    primary.down = not primary.down
    if not primary.down:
        time.sleep(0.15)
    ledger.finish(push, Result({"MsgType": "text"}))
    assert ledger.claim_answer(push, SUCCESS) is True
    assert ledger.claim_answer(push, SUCCESS) is False


def test_workers_of_one_host_share_the_fallback(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The fallback was per-process memory: with Redis away, a retry on another worker of the
    # same host claimed the push again and ran its handler twice.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    url = "redis://127.0.0.1:1/0?socket_timeout=0.2&socket_connect_timeout=0.2"
    worker_a, worker_b = open_shared_store(url), open_shared_store(url)
    key = f"claim-{uuid.uuid4()}"
    with caplog.at_level(logging.ERROR, logger="app.store.failover"):
        assert worker_a.add(key, b"1", 30) is True
        assert worker_b.add(key, b"1", 30) is False
    assert any("host's fallback file" in r.getMessage() for r in caplog.records)
    worker_a.close()
    worker_b.close()
    assert [path.name.startswith("wx-push-fallback-") for path in tmp_path.iterdir()] == [True]


def test_a_healthy_store_opens_no_fallback_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    store = open_shared_store(f"sqlite:///{tmp_path}/state/ledger.db")
    assert store.add("k", b"v", 10) is True
    store.close()
    assert [path.name for path in tmp_path.iterdir()] == ["state"]


def test_lock_falls_back_when_acquiring_fails() -> None:
    primary = FlakyStore()
    primary.down = True
    store = FailoverStore(primary, MemoryStore())
    with store.lock("l", ttl=1, wait=0) as held:
        assert held is True
        with store.lock("l", ttl=1, wait=0) as again:
            assert again is False


@pytest.mark.skipif(not redis_server_available(), reason="redis-server is not installed")
def test_a_retry_after_the_store_failed_waits_on_this_process_s_run(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A push claimed in Redis just before it died: its retry claimed it anew in the fallback,
    # which had never heard of it, and the same process ran the handler a second time.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with private_redis() as (url, redis_process):
        app = create_app(
            dataclasses.replace(
                settings,
                handlers="tests.service_handlers",
                store_url=f"{url}?socket_timeout=0.3&socket_connect_timeout=0.3",
            )
        )
        wechat = WeChatClient(app, user="oFailedOver")
        query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "sleep 1.5"}))
        try:
            assert wechat.post(query, body).lapsed
            redis_process.kill()
            redis_process.wait(timeout=10)
            assert wechat.post(query, body).reply == TextReply("slept 1.5")
        finally:
            app.extensions["wechat"].close()
    runs = [n for key, n in service_handlers.calls.items() if ":oFailedOver:" in key]
    assert runs == [1]
