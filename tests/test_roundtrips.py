"""The common path of a push costs two store round trips: the claim, and the answer."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask

from app import create_app
from app.testing import WeChatClient
from app.wechat.timing import LEASE_RENEWAL
from config import Settings

OPERATIONS = ("get", "set", "add", "add_and_peek", "take", "delete", "lock")


@pytest.fixture(params=["", "s3cret-for-the-api"], ids=["no-appsecret", "appsecret"])
def counted(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Flask, Counter[str]]]:
    app = create_app(
        dataclasses.replace(settings, handlers="tests.service_handlers", appsecret=request.param)
    )
    store = app.extensions["wechat"].store
    calls: Counter[str] = Counter()
    depth = [0]  # a memory store's compound operations call its simple ones: count the outer
    for name in OPERATIONS:
        original = getattr(store, name)

        def counting(*args: object, _name: str = name, _original: object = original) -> object:
            # The look after replies owed late reads the outbox's roster once a second, for
            # the process, not for any push (app/lifecycle/outbox.py).
            periodic = _name == "get" and str(args[0]).startswith("outbox:")
            calls[_name] += depth[0] == 0 and not periodic
            depth[0] += 1
            try:
                return _original(*args)  # type: ignore[operator]
            finally:
                depth[0] -= 1

        monkeypatch.setattr(store, name, counting)
    yield app, calls
    app.extensions["wechat"].close()


@pytest.mark.parametrize(
    "send",
    [
        lambda wechat: wechat.text("hello"),
        lambda wechat: wechat.event("CLICK", "MENU_HELP"),
        lambda wechat: wechat.text("wrong type"),  # a handler that answers nothing usable
    ],
    ids=["text-reply", "event-reply", "success"],
)
def test_a_push_answered_in_time_costs_two_round_trips(
    counted: tuple[Flask, Counter[str]], send: object
) -> None:
    app, calls = counted
    wechat = WeChatClient(app)
    send(wechat)  # type: ignore[operator]
    assert sum(calls.values()) == 2, calls


def test_nothing_is_written_for_a_push_after_it_was_answered(
    counted: tuple[Flask, Counter[str]],
) -> None:
    # The lease of a run answered in time was never released: its push was renewed in the
    # store every second for the life of the worker.
    app, calls = counted
    WeChatClient(app).text("hello")
    time.sleep(LEASE_RENEWAL * 2.5)
    assert sum(calls.values()) == 2, calls
