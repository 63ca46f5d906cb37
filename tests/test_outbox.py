"""The outbox: replies owed late, kept in the store until delivered, adopted by another process
once the one that kept them shows no life."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.lifecycle.outbox import Outbox
from app.store import Store
from app.store.memory import MemoryStore
from app.store.sqlite import SQLiteStore
from app.wechat.codec import BodyFormat
from app.wechat.envelope import Mode, Push

#: Seconds a process's list is left alone after its last sign of life, in these tests.
ALIVE = 0.3


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    backend: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "o.db")
    request.addfinalizer(backend.close)
    return backend


def outbox(store: Store) -> Outbox:
    """One process's outbox; several on one store stand for several processes."""
    return Outbox(store, namespace="acct", ttl=60, alive_ttl=ALIVE)


def push(n: int) -> Push:
    fields = {
        "ToUserName": "gh_0123456789ab",
        "FromUserName": f"oUser{n}",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": f"你好 <{n}>",
        "MsgId": str(1000 + n),
        "Extra": {"Nested": ["a", "b"]},
    }
    return Push(fields, Mode.SAFE, BodyFormat.JSON, 1700000000, f"nonce{n}")


def test_a_dead_process_s_owed_replies_are_adopted_by_exactly_one_other(store: Store) -> None:
    dying, first, second = outbox(store), outbox(store), outbox(store)
    dying.owe("k1", push(1))
    dying.owe("k2", push(2))
    assert first.adopt() == {}  # the owner still shows life
    time.sleep(ALIVE + 0.1)  # and then none: it died
    adopted = first.adopt()
    assert adopted == {"k1": push(1), "k2": push(2)}  # every field, mode and format intact
    assert first.owed() == adopted
    assert second.adopt() == {}


def test_the_adopter_shows_life_and_is_adopted_in_turn(store: Store) -> None:
    dying, adopter, last = outbox(store), outbox(store), outbox(store)
    dying.owe("k1", push(1))
    time.sleep(ALIVE + 0.1)
    assert adopter.adopt() == {"k1": push(1)}
    assert last.adopt() == {}  # the adopter is alive
    time.sleep(ALIVE + 0.1)
    assert last.adopt() == {"k1": push(1)}


def test_settled_replies_are_not_adopted(store: Store) -> None:
    owner, other = outbox(store), outbox(store)
    owner.owe("k1", push(1))
    owner.owe("k2", push(2))
    owner.settle("k1")
    owner.settle("unknown")
    time.sleep(ALIVE + 0.1)
    assert other.adopt() == {"k2": push(2)}


def test_a_process_struck_off_while_idle_enlists_again_when_it_owes(store: Store) -> None:
    """A live process whose list went empty shows no life and is struck off the roster; what
    it owes afterwards must still reach the roster."""
    owner, other, later = outbox(store), outbox(store), outbox(store)
    owner.owe("k1", push(1))
    owner.settle("k1")
    time.sleep(ALIVE + 0.1)
    assert other.adopt() == {}  # struck off, nothing to take
    owner.owe("k2", push(2))
    time.sleep(ALIVE + 0.1)
    assert later.adopt() == {"k2": push(2)}


def test_an_unreadable_list_is_logged_not_raised(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    dying, other = outbox(store), outbox(store)
    dying.owe("k1", push(1))
    store.delete(f"outbox:acct:alive:{dying.owner}")
    store.set(f"outbox:acct:owed:{dying.owner}", b"{not json", 60)
    with caplog.at_level(logging.ERROR):
        assert other.adopt() == {}
    assert "could not be read" in caplog.text


def test_a_burst_of_owed_replies_from_many_threads_is_kept_whole(store: Store) -> None:
    """Changes made while another thread writes the list are written by that thread: after a
    burst from 16 threads, the list in the store holds exactly what is still owed."""
    owner, other = outbox(store), outbox(store)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda n: owner.owe(f"k{n}", push(n)), range(200)))
        list(pool.map(lambda n: owner.settle(f"k{n}"), range(0, 200, 2)))
    time.sleep(ALIVE + 0.1)
    assert other.adopt() == {f"k{n}": push(n) for n in range(1, 200, 2)}
