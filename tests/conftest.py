"""Fixtures shared by the HTTP-level tests: isolated settings, the app, its clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from app import create_app
from app.testing import WeChatClient
from config import Settings

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
