"""The handler pool: runs and waits, and a shutdown that runs work users are owed, never
drops it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout

import gevent
import pytest

from app.lifecycle import runs
from app.lifecycle.runner import HandlerPool


def test_shutdown_runs_late_work_a_finishing_handler_hands_over() -> None:
    """A handler's callback hands work to the background just after the handler's future is
    done (as the service's late path does): shutdown must run it, not refuse it."""
    pool = HandlerPool(2)
    ran = threading.Event()

    def deliver() -> None:
        time.sleep(0.2)  # a call to WeChat's API
        ran.set()

    def hand_over(_: object) -> None:
        time.sleep(0.2)  # the handler's future is done; its owner's callback is still going
        pool.background(deliver)

    future = pool.run(lambda: None)
    future.add_done_callback(hand_over)
    future.result()
    pool.shutdown()
    assert ran.is_set()


def test_shutdown_runs_work_due_later_at_once() -> None:
    pool = HandlerPool(2)
    ran = threading.Event()
    pool.later(3600, ran.set)
    pool.shutdown()
    assert ran.is_set()


class SlowHandover(HandlerPool):
    """A pool whose hand-over to the background takes a while, as under load."""

    def background(self, work: Callable[[], object]) -> None:
        time.sleep(0.3)
        super().background(work)


def test_shutdown_waits_for_work_the_timer_is_handing_over() -> None:
    pool = SlowHandover(2)
    ran = threading.Event()
    pool.later(0.01, ran.set)
    time.sleep(0.1)  # the timer has taken the work and is handing it over
    pool.shutdown()
    assert ran.is_set()


def test_later_after_shutdown_runs_the_work_at_once() -> None:
    pool = HandlerPool(2)
    pool.shutdown()
    ran = threading.Event()
    pool.later(3600, ran.set)
    assert ran.is_set()


def test_later_work_fires_in_order_of_its_time() -> None:
    pool = HandlerPool(2)
    order: list[str] = []
    done = threading.Event()
    pool.later(0.2, lambda: (order.append("second"), done.set()))
    pool.later(0.05, lambda: order.append("first"))
    assert done.wait(5)
    pool.shutdown()
    assert order == ["first", "second"]


def test_a_run_gives_what_the_handler_returned_or_raised() -> None:
    pool = HandlerPool(2)
    assert pool.wait(pool.run(lambda: 42), 5) == 42

    def fails() -> None:
        raise ValueError("handler bug")

    failed = pool.run(fails)
    with pytest.raises(ValueError, match="handler bug"):
        pool.wait(failed, 5)
    pool.shutdown()


def test_a_wait_that_times_out_leaves_the_run_to_finish() -> None:
    pool = HandlerPool(1)
    release = threading.Event()
    run = pool.run(lambda: release.wait(5) and "late")
    with pytest.raises(FutureTimeout):
        pool.wait(run, 0.05)
    release.set()
    assert run.result() == "late"
    pool.shutdown()


def test_callbacks_run_once_whether_added_before_or_after_the_run_ends() -> None:
    pool = HandlerPool(1)
    release = threading.Event()
    seen: list[str] = []
    run = pool.run(lambda: release.wait(5))
    run.add_done_callback(lambda _: seen.append("before"))
    release.set()
    run.result()
    run.add_done_callback(lambda _: seen.append("after"))
    assert seen == ["before", "after"]
    pool.shutdown()


def test_no_more_handlers_run_at_once_than_the_pool_has_threads() -> None:
    pool = HandlerPool(3)
    lock = threading.Lock()
    running = [0]
    most = [0]

    def handler() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    runs = [pool.run(handler) for _ in range(20)]
    for run in runs:
        pool.wait(run, 5)
    workers = {t.name for t in threading.enumerate() if t.name.startswith("wx-handler")}
    pool.shutdown()
    assert most[0] == 3
    assert len(workers) == 3
    assert not any(t.name.startswith("wx-handler") for t in threading.enumerate())


def test_greenlets_waiting_for_runs_yield_to_each_other(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under gevent a waiting greenlet yields: many wait at once, each gets its own run's
    result, one that times out goes on, and the loop keeps turning meanwhile."""
    monkeypatch.setattr(runs, "cooperative", lambda: True)
    pool = HandlerPool(40)
    never = threading.Event()
    ticks = [0]

    def ticker() -> None:
        while ticks[0] < 1000:
            ticks[0] += 1
            gevent.sleep(0.005)

    def attempt(n: int) -> int:
        return pool.wait(pool.run(lambda: time.sleep(0.1) or n), 5)

    def impatient() -> str:
        try:
            pool.wait(pool.run(lambda: never.wait(5)), 0.05)
        except FutureTimeout:
            return "timed out"
        return "answered"

    clock = gevent.spawn(ticker)
    attempts = [gevent.spawn(attempt, n) for n in range(30)]
    lapse = gevent.spawn(impatient)
    gevent.joinall([*attempts, lapse], timeout=5, raise_error=True)
    assert [g.value for g in attempts] == list(range(30))
    assert lapse.value == "timed out"
    assert ticks[0] >= 10  # 0.1 s of handlers: no wait blocked the loop
    clock.kill()
    never.set()
    pool.shutdown()


def test_periodic_work_repeats_until_shutdown_which_drops_it() -> None:
    pool = HandlerPool(1)
    rounds: list[float] = []
    pool.every(0.05, lambda: rounds.append(time.monotonic()))
    time.sleep(0.4)
    pool.shutdown()
    done = len(rounds)
    time.sleep(0.15)
    assert done >= 4
    assert len(rounds) == done  # no round after shutdown


def test_shutdown_drops_periodic_work_instead_of_running_it() -> None:
    """Work due later is run at shutdown because users are owed it; a periodic look is not:
    its round due after shutdown never runs."""
    pool = HandlerPool(1)
    rounds: list[float] = []
    pool.every(3600, lambda: rounds.append(time.monotonic()))
    pool.shutdown()
    assert rounds == []
