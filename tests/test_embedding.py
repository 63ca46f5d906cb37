"""The service added to a Flask application the user already has, under a URL prefix: the
host's routes, config and logging stay the host's."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask, request

from app import WeChatPush
from app.testing import WeChatClient
from app.wechat.replies import TextReply
from config import AccountSettings, Settings, SlowStrategy
from tests.conftest import AES_KEY, APPID, TOKEN

PREFIX = "/hooks/wechat"


def host_app() -> Flask:
    """A small application of the user's own, with its own routes and config."""
    host = Flask("host")
    host.config.update(MAX_CONTENT_LENGTH=10 * 1024 * 1024, SECRET_KEY="host-secret")

    @host.get("/")
    def index() -> str:
        return "the host's home page"

    @host.post("/upload")
    def upload() -> str:
        return f"{len(request.get_data())} bytes"

    @host.get("/healthz")
    def healthz() -> str:
        return "the host's own health check"

    return host


@pytest.fixture
def host(settings: Settings) -> Iterator[Flask]:
    app = host_app()
    wx = WeChatPush()
    wx.init_app(app, settings=dataclasses.replace(settings, max_body=1024), url_prefix=PREFIX)
    yield app
    app.extensions["wechat"].close()


def test_the_callback_answers_under_the_prefix(host: Flask) -> None:
    wechat = WeChatClient(host)
    assert wechat.path == "/hooks/wechat/wx"
    assert wechat.text("hi").reply == TextReply("hi")
    assert host.test_client().post("/wx").status_code == 404


def test_the_hosts_routes_still_work(host: Flask) -> None:
    client = host.test_client()
    assert client.get("/").get_data(as_text=True) == "the host's home page"
    assert client.get("/healthz").get_data(as_text=True) == "the host's own health check"
    # The host's own limit (10 MiB) still applies to its routes, not the service's 1 KiB.
    assert client.post("/upload", data=b"x" * 100_000).get_data(as_text=True) == "100000 bytes"


def test_the_hosts_config_is_untouched(settings: Settings) -> None:
    app = host_app()
    before = dict(app.config)
    WeChatPush(app, settings=settings, url_prefix=PREFIX)
    try:
        assert dict(app.config) == before
    finally:
        app.extensions["wechat"].close()


def test_the_body_limit_is_the_services_own_per_request(host: Flask) -> None:
    wechat = WeChatClient(host)
    query, _ = wechat.build(wechat.complete({"MsgType": "text", "Content": "x"}))
    response = host.test_client().post(
        PREFIX + "/wx", query_string=query, data=b"<xml>" + b"a" * 2000 + b"</xml>"
    )
    assert response.status_code == 413
    assert "WX_MAX_BODY=1024" in response.get_data(as_text=True)


def test_no_health_or_metrics_routes_unless_asked(host: Flask, settings: Settings) -> None:
    client = host.test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get(PREFIX + "/healthz").status_code == 404
    asked = host_app()
    WeChatPush(asked, settings=settings, url_prefix=PREFIX, healthz=True, metrics=True)
    try:
        client = asked.test_client()
        assert client.get(PREFIX + "/healthz").json == {"status": "ok", "store": "ok"}
        assert b"wx_pushes_total" in client.get(PREFIX + "/metrics").data
        assert client.get("/healthz").get_data(as_text=True) == "the host's own health check"
        assert client.get("/metrics").status_code == 404
    finally:
        asked.extensions["wechat"].close()


def test_no_log_handler_is_installed(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # As in a process where the service's own app was never built.
    monkeypatch.setattr(logging.getLogger("app"), "handlers", [])
    monkeypatch.setattr(logging.getLogger("app"), "level", logging.NOTSET)
    loggers = [logging.getLogger(), logging.getLogger("app")]
    before = [list(logger.handlers) for logger in loggers]
    levels = [logger.level for logger in loggers]
    app = host_app()
    WeChatPush(app, settings=settings, url_prefix=PREFIX)
    app.extensions["wechat"].close()
    assert [list(logger.handlers) for logger in loggers] == before
    assert [logger.level for logger in loggers] == levels


def test_several_accounts_under_the_prefix(settings: Settings) -> None:
    shop = AccountSettings(name="shop", token="shopToken2026")
    app = host_app()
    accounts = WeChatPush().init_app(
        app, settings=dataclasses.replace(settings, accounts=(shop,)), url_prefix=PREFIX
    )
    try:
        assert accounts.paths == {"default": PREFIX + "/wx", "shop": PREFIX + "/wx/shop"}
        assert WeChatClient(app, account="shop").text("hi").reply == TextReply("hi")
    finally:
        accounts.close()


def test_close_on_teardown_finishes_what_is_owed(settings: Settings, tmp_path: Path) -> None:
    owed = dataclasses.replace(
        settings,
        handlers="tests.service_handlers",
        slow_strategy=SlowStrategy.CUSTOMER_SERVICE,
        store_url=f"sqlite:///{tmp_path}/wx.db",
    )
    app = host_app()
    WeChatPush(app, settings=owed, url_prefix=PREFIX)
    assert WeChatClient(app, user="oTeardown").text("sleep 1.3").success  # the reply is late
    app.extensions["wechat"].close()  # the host's teardown: the handler finishes, its reply kept
    again = host_app()
    WeChatPush(again, settings=owed, url_prefix=PREFIX)
    try:
        reply = WeChatClient(again, user="oTeardown").text("next").reply
        assert reply == TextReply("slept 1.3\n\necho: next")
    finally:
        again.extensions["wechat"].close()


def test_init_app_twice_is_refused(settings: Settings) -> None:
    app = host_app()
    wx = WeChatPush(app, settings=settings, url_prefix=PREFIX)
    try:
        with pytest.raises(RuntimeError, match="already set up"):
            wx.init_app(app, settings=settings)
    finally:
        app.extensions["wechat"].close()


@pytest.mark.parametrize("prefix", ["hooks", "/hooks/"])
def test_a_malformed_prefix_is_refused(settings: Settings, prefix: str) -> None:
    with pytest.raises(ValueError, match="url_prefix must start with '/'"):
        WeChatPush(host_app(), settings=settings, url_prefix=prefix)


def test_the_readme_example_serves_under_its_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (example,) = re.findall(r"```python\n# myapp.py\n(.*?)```", text, re.S)
    for name, value in {"WX_TOKEN": TOKEN, "WX_APPID": APPID, "WX_AES_KEY": AES_KEY}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WX_STORE_URL", "memory://")
    namespace: dict[str, object] = {"__name__": "myapp"}
    exec(compile(example, "README.md: myapp.py", "exec"), namespace)
    app = namespace["create_app"]()  # type: ignore[operator]
    try:
        assert app.test_client().get("/").get_data(as_text=True) == "my own site"
        assert WeChatClient(app).text("hi").reply == TextReply("hi")
        assert app.extensions["wechat"].paths == {"default": "/hooks/wechat/wx"}
    finally:
        app.extensions["wechat"].close()
