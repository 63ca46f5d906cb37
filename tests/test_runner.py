"""The handler pool's shutdown: work users are owed is run, never dropped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

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
