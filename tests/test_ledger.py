"""The ledger's records: attempts count themselves, delivery is taken once, answers are kept."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client import REGISTRY

from app.lifecycle.lease import LeaseKeeper
from app.lifecycle.ledger import SUCCESS, Answer, Claim, Ledger, Result
from app.store import MemoryStore, SQLiteStore, Store
from app.wechat.identity import PushKey

T = TypeVar("T")


def key(name: str) -> PushKey:
    return PushKey("msg", "oUser", name)


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
    assert [ledger.begin(key("push")).attempt for _ in range(3)] == [1, 2, 3]
    assert ledger.begin(key("other")).attempt == 1


class RecordingStore(MemoryStore):
    """A memory store that remembers every key written."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self.names.append(key)
        super().set(key, value, ttl)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        self.names.append(key)
        return super().add(key, value, ttl)


def test_store_keys_hold_no_openid() -> None:
    store = RecordingStore()
    ledger = Ledger(store, namespace="wx1", ttl=60)
    push = PushKey("msg", "oSecretOpenId", "5")
    ledger.begin(push)
    ledger.finish(push, Result(None))
    ledger.claim_answer(push, SUCCESS)
    assert len(store.names) == 3
    assert not any("oSecretOpenId" in name for name in store.names)


def test_accounts_sharing_a_store_do_not_collide(store: Store) -> None:
    assert Ledger(store, namespace="wx1", ttl=60).begin(key("push")).attempt == 1
    assert Ledger(store, namespace="wx2", ttl=60).begin(key("push")).attempt == 1


def test_concurrent_attempts_get_distinct_numbers(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    assert sorted(_race(lambda: ledger.begin(key("p")).attempt)) == list(range(1, 9))


def test_result_is_absent_until_finished(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    ledger.begin(key("p"))
    assert ledger.result(key("p")) is None
    ledger.finish(key("p"), Result({"MsgType": "text", "Content": "你好", "CreateTime": 1}))
    assert ledger.result(key("p")) == Result(
        {"MsgType": "text", "Content": "你好", "CreateTime": 1}
    )
    ledger.finish(key("q"), Result(None))
    assert ledger.result(key("q")) == Result(None)


def test_delivery_is_claimed_exactly_once_and_the_winner_s_bytes_are_kept(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    ledger.begin(key("p"))
    answers = [Answer(f"reply {n}".encode(), "application/xml") for n in range(8)]
    pending = iter(answers)
    outcomes = _race(lambda: (answer := next(pending), ledger.claim_answer(key("p"), answer)))
    winners = [answer for answer, won in outcomes if won]
    assert len(winners) == 1
    assert ledger.answer(key("p")) == winners[0]
    ledger.begin(key("p"))  # a retry does not create a second obligation
    assert ledger.claim_answer(key("p"), SUCCESS) is False


def test_answers_are_kept_byte_for_byte(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    assert ledger.answer(key("p")) is None
    body = b"<xml><Content><![CDATA[a\nb]]></Content></xml>"
    ledger.claim_answer(key("p"), Answer(body, "application/xml"))
    assert ledger.answer(key("p")) == Answer(body, "application/xml")
    ledger.claim_answer(key("s"), SUCCESS)
    assert ledger.answer(key("s")) == SUCCESS


def test_give_up_is_remembered(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    assert ledger.gave_up(key("p")) is False
    ledger.give_up(key("p"))
    assert ledger.gave_up(key("p")) is True


def test_entries_expire(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=0.2)
    ledger.begin(key("p"))
    ledger.finish(key("p"), Result(None))
    threading.Event().wait(0.4)
    assert ledger.result(key("p")) is None
    assert ledger.begin(key("p")).attempt == 1


def test_a_claim_is_alive_while_renewed_and_taken_over_once_after(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60, lease_ttl=0.3)
    ledger.begin(key("push"))
    assert not ledger.orphaned(key("push"))
    assert not ledger.take_over(key("push"))
    for _ in range(3):  # renewed more often than it lasts: never lapses
        time.sleep(0.15)
        ledger.renew(key("push"), claimed_at=time.time())
        assert not ledger.orphaned(key("push"))
    time.sleep(0.4)  # the holder died
    assert ledger.orphaned(key("push"))
    assert sorted(_race(lambda: ledger.take_over(key("push")))) == [False] * 7 + [True]
    assert not ledger.orphaned(key("push"))


def test_a_fresh_claim_without_its_lease_yet_is_not_orphaned(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60, lease_ttl=0.3)
    ledger.begin(key("push"))  # a retry racing the claim sees no lease yet
    assert not ledger.orphaned(key("push"))
    time.sleep(0.4)
    assert ledger.orphaned(key("push"))
    assert not Ledger(store, namespace="wx1", ttl=60).orphaned(key("never claimed"))


def test_the_lease_keeper_renews_until_released(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60, lease_ttl=0.3)
    keeper = LeaseKeeper(ledger, interval=0.05)
    ledger.begin(key("push"))
    keeper.hold(key("push"))
    time.sleep(0.6)
    assert not ledger.orphaned(key("push"))
    keeper.release(key("push"))
    time.sleep(0.4)
    assert ledger.orphaned(key("push"))
    keeper.close()


def test_the_first_claim_peeks_at_a_key_in_the_same_round_trip(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    store.set("kept:oUser", b"a kept reply", 60)
    assert ledger.begin(key("p"), peek="kept:oUser") == Claim(1, b"a kept reply")
    assert ledger.begin(key("q"), peek="kept:nobody") == Claim(1, None)
    assert ledger.begin(key("p"), peek="kept:oUser") == Claim(2, b"a kept reply")


#: The labels of series counted outside any account's work, as a bare LeaseKeeper's are.
NO_ACCOUNT = {"account": ""}


def test_a_run_held_too_long_is_named_once_and_counted(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)
    keeper = LeaseKeeper(ledger, interval=0.05, hung_after=0.2)
    before = REGISTRY.get_sample_value("wx_handlers_hung_total", NO_ACCOUNT) or 0.0
    running = REGISTRY.get_sample_value("wx_handlers_running", NO_ACCOUNT) or 0.0
    with caplog.at_level(logging.WARNING, logger="app.lifecycle.lease"):
        keeper.hold(PushKey("msg", "oHung", "9"))
        keeper.hold(key("quick"))
        assert REGISTRY.get_sample_value("wx_handlers_running", NO_ACCOUNT) == running + 2
        keeper.release(key("quick"))
        time.sleep(0.6)
    hung = [r.getMessage() for r in caplog.records if "still running" in r.getMessage()]
    assert len(hung) == 1 and "msg:user#" in hung[0] and "oHung" not in hung[0]
    assert REGISTRY.get_sample_value("wx_handlers_hung_total", NO_ACCOUNT) == before + 1
    keeper.release(PushKey("msg", "oHung", "9"))
    keeper.release(PushKey("msg", "oHung", "9"))  # twice is harmless
    assert REGISTRY.get_sample_value("wx_handlers_running", NO_ACCOUNT) == running
    keeper.close()


def test_renewing_puts_back_a_claim_the_store_lost(store: Store) -> None:
    # Redis died (or came back empty) while the handler ran: the store now in use had never
    # heard of the push, and a retry on another worker claimed it anew and ran it again.
    ledger = Ledger(store, namespace="wx1", ttl=60, lease_ttl=0.3)
    claimed_at = time.time() - 10
    assert ledger.begin(key("push")).attempt == 1
    store.delete(f"ledger:wx1:{key('push').stored}:attempt:1")
    ledger.renew(key("push"), claimed_at=claimed_at)
    assert ledger.begin(key("push")).attempt == 2
    time.sleep(0.4)  # the lease lapses; the restored claim keeps its first time
    assert ledger.orphaned(key("push"))


def test_a_signed_url_is_tied_to_the_first_push_it_carried(store: Store) -> None:
    ledger = Ledger(store, namespace="wx1", ttl=60)

    def bind(push: str, *, nonce: str = "415670741", on: Ledger = ledger) -> bool:
        return on.bind_url(key(push), timestamp=1714112445, nonce=nonce, ttl=0.3)

    assert bind("a")
    assert bind("a")  # the same push again: a retry
    assert not bind("b")
    assert bind("b", nonce="415670742")  # another URL
    assert bind("b", on=Ledger(store, namespace="wx2", ttl=60))  # another account
    time.sleep(0.35)
    assert bind("b")  # the tie expired with the URL's window
