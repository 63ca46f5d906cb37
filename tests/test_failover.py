"""A failing shared store degrades to a local one, loudly, and comes back when it recovers."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from app.store import MemoryStore, RedisStore, StoreError
from app.store.failover import FailoverStore


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
    assert store.add("k", b"shared", 10) is True
    assert primary.get("k") == b"shared"


def test_lock_falls_back_when_acquiring_fails() -> None:
    primary = FlakyStore()
    primary.down = True
    store = FailoverStore(primary, MemoryStore())
    with store.lock("l", ttl=1, wait=0) as held:
        assert held is True
        with store.lock("l", ttl=1, wait=0) as again:
            assert again is False
