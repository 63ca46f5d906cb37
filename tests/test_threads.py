"""A value per native thread under gevent (app/threads.py), one shared value otherwise."""

from __future__ import annotations

import threading
from itertools import count

import pytest

from app import threads
from app.threads import PerThread


def _on_another_thread(per_thread: PerThread[int]) -> int:
    found: list[int] = []
    thread = threading.Thread(target=lambda: found.append(per_thread.here()))
    thread.start()
    thread.join()
    return found[0]


def test_without_gevent_every_thread_shares_one_value() -> None:
    made = count()
    per_thread = PerThread(lambda: next(made))
    assert per_thread.here() == per_thread.shared == _on_another_thread(per_thread) == 0


def test_under_gevent_each_other_thread_makes_its_own_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(threads, "cooperative", lambda: True)
    made = count()
    per_thread = PerThread(lambda: next(made))
    found: list[int] = []

    def twice() -> None:
        found.extend([per_thread.here(), per_thread.here()])

    worker = threading.Thread(target=twice)
    worker.start()
    worker.join()
    assert per_thread.here() == per_thread.shared == 0
    assert found == [1, 1]
    assert _on_another_thread(per_thread) == 2
