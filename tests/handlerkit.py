"""Fixtures and helpers shared by the tests of what handlers can do (ctx, sessions, middleware,
async handlers, windows, long replies). Test modules import the fixtures they use."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from app import create_app
from config import Settings
from tests.conftest import APPID
from tests.fakewechat import FakeWeChat

MakeApp = Callable[..., Flask]
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def make_app(settings: Settings) -> Iterator[MakeApp]:
    """Apps on the test settings, serving tests.ctx_handlers unless told otherwise."""
    apps: list[Flask] = []

    def make(handlers: str = "tests.ctx_handlers", **changes: object) -> Flask:
        app = create_app(dataclasses.replace(settings, handlers=handlers, **changes))  # type: ignore[arg-type]
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["wechat"].close()


@pytest.fixture
def fake_api() -> Iterator[FakeWeChat]:
    """WeChat's API on loopback, for the account of the test settings."""
    with FakeWeChat(APPID, SECRET) as fake:
        yield fake


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``check`` until it holds: background work (late replies) is not timed by tests."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
