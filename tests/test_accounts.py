"""Several accounts in one app: each at its path, with its handlers, keys, ledger and kept
replies, and its name on its metrics and log lines."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client import REGISTRY

from app import TextReply, create_app
from app.logs import AccountFilter
from app.testing import WeChatClient
from app.wechat.errors import WeChatError
from config import AccountSettings, Settings, SlowStrategy

SHOP = AccountSettings(
    name="shop",
    token="shopToken2026",
    appid="wx00000000000000a1",
    aes_key="ShopShopShopShopShopShopShopShopShopShop123",
    handlers="tests.account_handlers",
)
USER = "oSameUserInBothAccounts0000"


@pytest.fixture
def two(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """The default account (tests/service_handlers.py) and ``shop`` on one memory store."""
    monkeypatch.setenv("WX_TEST_CALLS", str(tmp_path / "calls.log"))
    app = create_app(
        dataclasses.replace(settings, handlers="tests.service_handlers", accounts=(SHOP,))
    )
    yield app
    app.extensions["wechat"].close()


def runs(tmp_path: Path) -> list[str]:
    """Whose handler ran for each recorded run: ``default`` or the account_handlers mark."""
    path = tmp_path / "calls.log"
    lines = path.read_text().splitlines() if path.exists() else []
    identities = [line.split(" ", 1)[1] for line in lines]
    return [identity.split("|")[0] if "|" in identity else "default" for identity in identities]


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_each_account_answers_at_its_path_with_its_handlers(two: Flask) -> None:
    accounts = two.extensions["wechat"]
    assert accounts.paths == {"default": "/wx", "shop": "/wx/shop"}
    assert WeChatClient(two).text("hi").reply == TextReply("echo: hi")
    assert WeChatClient(two, account="shop").text("hi").reply == TextReply("shop: hi")


def test_the_same_user_and_msgid_in_two_accounts_run_both_handlers_once(
    two: Flask, tmp_path: Path
) -> None:
    default = WeChatClient(two, user=USER)
    shop = WeChatClient(two, account="shop", user=USER)
    push = {"MsgType": "text", "Content": "same", "MsgId": 6054768590064713728}
    answers = [default.send(push, attempts=3), shop.send(push, attempts=3)]
    assert [answer.reply for answer in answers] == [
        TextReply("echo: same"),
        TextReply("shop: same"),
    ]
    assert sorted(runs(tmp_path)) == ["default", "shop"]


def test_replies_are_sealed_with_each_accounts_own_key_and_appid(two: Flask) -> None:
    default = WeChatClient(two, user=USER)
    shop = WeChatClient(two, account="shop", user=USER)
    push = {"MsgType": "text", "Content": "sealed", "MsgId": 42}
    to_default, to_shop = default.send(push), shop.send(push)
    # Each reads (verifies the signature, decrypts, checks the AppID in the frame) with its own
    # account's values; the other account's values refuse it.
    assert shop.read(200, to_shop.body).reply == TextReply("shop: sealed")
    with pytest.raises(WeChatError):
        default.read(200, to_shop.body)
    with pytest.raises(WeChatError):
        shop.read(200, to_default.body)


def test_a_push_signed_for_one_account_is_refused_at_the_others_path(two: Flask) -> None:
    refused = {"account": "shop", "reason": "SignatureError"}
    before = counted("wx_refused_total", **refused)
    default = WeChatClient(two)
    query, body = default.build(default.complete({"MsgType": "text", "Content": "wrong door"}))
    response = two.test_client().post("/wx/shop", query_string=query, data=body)
    assert response.status_code == 403
    assert response.get_data(as_text=True).startswith("403 SignatureError: ")
    assert counted("wx_refused_total", **refused) == before + 1
    shop = WeChatClient(two, account="shop")
    query, body = shop.build(shop.complete({"MsgType": "text", "Content": "wrong door"}))
    assert two.test_client().post("/wx", query_string=query, data=body).status_code == 403


def test_a_reply_kept_for_one_account_is_not_given_to_the_other(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Neither account has an AppSecret: a late reply waits for the user's next message.
    monkeypatch.setenv("WX_TEST_CALLS", str(tmp_path / "calls.log"))
    app = create_app(
        dataclasses.replace(
            settings,
            handlers="tests.service_handlers",
            slow_strategy=SlowStrategy.CUSTOMER_SERVICE,
            accounts=(dataclasses.replace(SHOP, slow_strategy=SlowStrategy.CUSTOMER_SERVICE),),
        )
    )
    default = WeChatClient(app, user=USER)
    shop = WeChatClient(app, account="shop", user=USER)
    kept = {"account": "default", "path": "next_message"}
    before = counted("wx_late_deliveries_total", **kept)
    try:
        assert default.text("sleep 1.2").success  # answered at the deadline, replied late
        _wait_for(lambda: counted("wx_late_deliveries_total", **kept) > before)
        assert shop.text("next").reply == TextReply("shop: next")
        assert default.text("next").reply == TextReply("slept 1.2\n\necho: next")
    finally:
        app.extensions["wechat"].close()


def test_metrics_and_log_lines_name_the_account(
    two: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    labels = {"account": "shop", "type": "text", "outcome": "reply"}
    before = counted("wx_pushes_total", **labels)
    default_before = counted("wx_pushes_total", **{**labels, "account": "default"})
    seen: list[logging.LogRecord] = []
    handler = _Collect(seen)
    handler.addFilter(AccountFilter())  # as an application would add it to a handler of its own
    logging.getLogger("app").addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="app"):
            WeChatClient(two, account="shop").send({"MsgType": "text", "Content": "x"}, attempts=2)
    finally:
        logging.getLogger("app").removeHandler(handler)
    assert counted("wx_pushes_total", **labels) == before + 2
    assert counted("wx_pushes_total", **{**labels, "account": "default"}) == default_before
    pushes = [r for r in seen if r.getMessage().startswith("push ")]
    assert [(r.account, r.to) for r in pushes] == [("shop", "gh_0123456789ab")] * 2  # type: ignore[attr-defined]
    retried = [r for r in seen if "answered from the ledger" in r.getMessage()]
    assert [r.account for r in retried] == ["shop"]  # type: ignore[attr-defined]


def test_handler_runs_count_for_their_account_on_the_pool_thread(two: Flask) -> None:
    before = counted("wx_handler_seconds_count", account="shop")
    WeChatClient(two, account="shop").text("counted")
    assert counted("wx_handler_seconds_count", account="shop") == before + 1


def _wait_for(condition: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the condition did not come true"
        time.sleep(0.02)


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
