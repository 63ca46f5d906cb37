"""The ledger's records: attempts count themselves, delivery is taken once, answers are kept."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from app.lease import LeaseKeeper
from app.ledger import SUCCESS, Answer, Ledger, Result
from app.store import MemoryStore, SQLiteStore, Store

T = TypeVar("T")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    backend: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "l.db")
    request.addfinalizer(backend.close)
    return backend


def _race(call: Callable[[], T], callers: int = 8) -> list[T]:
    """Make ``callers`` threads call ``call`` at once; their results, in no order."""
    results: list[T] = []
    threads = [threading.Thread(target=lambda: results.append(call())) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_attempts_number_themselves(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    assert [ledger.begin("push") for _ in range(3)] == [1, 2, 3]
    assert ledger.begin("other") == 1


def test_accounts_sharing_a_store_do_not_collide(store: Store) -> None:
    assert Ledger(store, namespace="wx1", ttl=60).begin("push") == 1
    assert Ledger(store, namespace="wx2", ttl=60).begin("push") == 1


def test_concurrent_attempts_get_distinct_numbers(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    assert sorted(_race(lambda: ledger.begin("p"))) == list(range(1, 9))


def test_result_is_absent_until_finished(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    ledger.begin("p")
    assert ledger.result("p") is None
    ledger.finish("p", Result({"MsgType": "text", "Content": "你好", "CreateTime": 1}))
    assert ledger.result("p") == Result({"MsgType": "text", "Content": "你好", "CreateTime": 1})
    ledger.finish("q", Result(None))
    assert ledger.result("q") == Result(None)


def test_delivery_is_taken_exactly_once(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    assert ledger.take_delivery("p") is False  # nothing owed before the first attempt
    ledger.begin("p")
    assert _race(lambda: ledger.take_delivery("p")).count(True) == 1
    ledger.begin("p")  # a retry does not create a second obligation
    assert ledger.take_delivery("p") is False


def test_answers_are_kept_byte_for_byte(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    assert ledger.answer("p") is None
    body = b"<xml><Content><![CDATA[a\nb]]></Content></xml>"
    ledger.record_answer("p", Answer(body, "application/xml"))
    assert ledger.answer("p") == Answer(body, "application/xml")
    ledger.record_answer("s", SUCCESS)
    assert ledger.answer("s") == SUCCESS


def test_give_up_is_remembered(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    assert ledger.gave_up("p") is False
    ledger.give_up("p")
    assert ledger.gave_up("p") is True


def test_entries_expire(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=0.2)
    ledger.begin("p")
    ledger.finish("p", Result(None))
    threading.Event().wait(0.4)
    assert ledger.result("p") is None
    assert ledger.begin("p") == 1


def test_a_claim_is_alive_while_renewed_and_taken_over_once_after(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60, lease_ttl=0.3)
    ledger.begin("push")
    assert not ledger.orphaned("push")
    assert not ledger.take_over("push")
    for _ in range(3):  # renewed more often than it lasts: never lapses
        time.sleep(0.15)
        ledger.renew("push")
        assert not ledger.orphaned("push")
    time.sleep(0.4)  # the holder died
    assert ledger.orphaned("push")
    assert sorted(_race(lambda: ledger.take_over("push"))) == [False] * 7 + [True]
    assert not ledger.orphaned("push")


def test_a_fresh_claim_without_its_lease_yet_is_not_orphaned(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60, lease_ttl=0.3)
    ledger.begin("push")  # a retry racing the claim sees no lease yet
    assert not ledger.orphaned("push")
    time.sleep(0.4)
    assert ledger.orphaned("push")
    assert not Ledger(store, namespace="wx1", ttl=60).orphaned("never claimed")


def test_the_lease_keeper_renews_until_released(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60, lease_ttl=0.3)
    keeper = LeaseKeeper(ledger, interval=0.05)
    ledger.begin("push")
    keeper.hold("push")
    time.sleep(0.6)
    assert not ledger.orphaned("push")
    keeper.release("push")
    time.sleep(0.4)
    assert ledger.orphaned("push")
    keeper.close()
