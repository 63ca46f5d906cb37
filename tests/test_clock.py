"""The clock the life of a push is timed by, and the manual one tests play slow handlers on."""

from __future__ import annotations

import threading
import time

import pytest

from app.lifecycle.runner import HandlerPool
from app.testing import ManualClock


def test_a_manual_clock_moves_only_when_advanced() -> None:
    clock = ManualClock()
    monotonic, unix = clock.monotonic(), clock.time()
    assert abs(unix - time.time()) < 1  # WeChat's timestamps still check against it
    time.sleep(0.02)
    assert (clock.monotonic(), clock.time()) == (monotonic, unix)
    clock.advance(2.5)
    assert clock.monotonic() == monotonic + 2.5
    assert clock.time() == unix + 2.5
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


def test_a_wait_on_a_run_ends_when_the_run_does_or_the_clock_passes_its_time() -> None:
    clock = ManualClock()
    pool = HandlerPool(2, clock=clock)
    gate = threading.Event()
    quick = pool.run(lambda: "quick")
    assert pool.wait(quick, 1.0) == "quick"

    slow = pool.run(lambda: gate.wait(5) and "slow")
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(clock.wait(slow, 1.0)))
    waiter.start()
    clock.until_waiting(1)
    clock.advance(0.5)
    time.sleep(0.05)
    assert waiter.is_alive()  # half its time has passed, on the clock
    clock.advance(0.5)
    waiter.join(5)
    assert outcome == [False]
    gate.set()
    assert pool.wait(slow, 1.0) == "slow"
    pool.shutdown()


def test_work_due_later_fires_when_the_clock_reaches_it() -> None:
    clock = ManualClock()
    pool = HandlerPool(1, clock=clock)
    fired = threading.Event()
    pool.later(20.0, fired.set)
    assert not fired.wait(0.05)
    clock.advance(19.9)
    assert not fired.wait(0.05)
    clock.advance(0.1)
    assert fired.wait(5)
    pool.shutdown()


def test_a_sleep_the_clock_never_reaches_fails_instead_of_hanging() -> None:
    clock = ManualClock(patience=0.05)
    with pytest.raises(RuntimeError, match="advance"):
        clock.sleep(1.0)


def test_until_waiting_counts_sleepers_and_gives_up_in_real_time() -> None:
    clock = ManualClock()
    with pytest.raises(TimeoutError):
        clock.until_waiting(1, timeout=0.05)
    sleeper = threading.Thread(target=clock.sleep, args=(3.0,))
    sleeper.start()
    clock.until_waiting(1)
    clock.advance(3.0)
    sleeper.join(5)
    assert not sleeper.is_alive()
