"""Fixtures shared by the HTTP-level tests: isolated settings, the app, its clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.store import RedisStore, StoreError
from app.testing import WeChatClient
from config import Settings

# Read at import, before the per-test isolation below removes WX_* variables.
REDIS_URL = os.environ.get("WX_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_REDIS = os.environ.get("WX_TEST_REQUIRE_REDIS") == "1"

TOKEN = "weixinpush2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx1a2b3c4d5e6f7a8b"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No WX_* variable or .env file of the developer's leaks into a test."""
    for name in list(os.environ):
        if name.startswith("WX_") and not name.startswith("WX_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WX_DOTENV", str(tmp_path / "absent.env"))


@pytest.fixture
def settings() -> Settings:
    """An Official Account with an EncodingAESKey, a memory store and a short deadline."""
    return Settings(
        token=TOKEN,
        appid=APPID,
        aes_key=AES_KEY,
        store_url="memory://",
        deadline=1.0,
        handler_threads=4,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings)
    yield application
    application.extensions["wechat"].close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def wechat(app: Flask) -> WeChatClient:
    """Plays WeChat in safe mode against ``app``."""
    return WeChatClient(app)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis test server's URL; skip (or fail under WX_TEST_REQUIRE_REDIS=1) without one."""
    probe = RedisStore(REDIS_URL)
    try:
        probe.ping()
    except StoreError as e:
        reason = (
            f"no Redis server on {probe.address}; set WX_TEST_REDIS_URL or start redis-server"
            f" ({e.message})"
        )
        if REQUIRE_REDIS:
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        probe.close()
    return REDIS_URL
