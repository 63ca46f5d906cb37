"""Template messages and subscribe messages: bodies, the msgid, a client_msg_id that makes a
retry safe, the subscribe value limits, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from app.api import APIUnavailable, ArgumentInvalid, SubscriptionRefused
from tests.apikit import (  # noqa: F401 - fixtures
    OPENID,
    Caller,
    call_fixture,
    fake_fixture,
)
from tests.fakewechat import BIZSEND_PATH, SUBSCRIBE_PATH, TEMPLATE_PATH, FakeWeChat

PAGE = {"appid": "wxmini", "pagepath": "pages/order?id=1"}


def test_a_template_message(call: Caller, fake: FakeWeChat) -> None:
    msgid = call(
        "send_template",
        OPENID,
        "TPL_ID",
        {"thing1": "订单已支付", "time2": {"value": "2024-01-01 12:00", "color": "#173177"}},
        url="https://example.com/o/1",
        miniprogram=PAGE,
    )
    [sent] = fake.templates
    assert sent == {
        "touser": OPENID,
        "template_id": "TPL_ID",
        "url": "https://example.com/o/1",
        "miniprogram": PAGE,
        "data": {
            "thing1": {"value": "订单已支付"},
            "time2": {"value": "2024-01-01 12:00", "color": "#173177"},
        },
    }
    assert msgid == 2_000_000_001


def test_the_msgid_is_the_one_wechat_answers(call: Caller, fake: FakeWeChat) -> None:
    first = call("send_template", OPENID, "T", {"thing1": "a"})
    second = call("send_template", OPENID, "T", {"thing1": "b"})
    assert (first, second) == (2_000_000_001, 2_000_000_002)


def test_a_template_whose_answer_was_lost_is_retried_with_its_client_msg_id(
    call: Caller, fake: FakeWeChat
) -> None:
    fake.drop_next(TEMPLATE_PATH, processed=True)
    msgid = call("send_template", OPENID, "T", {"thing1": "paid"}, client_msg_id="order-1-paid")
    assert len(fake.calls(TEMPLATE_PATH)) == 2
    assert [t["client_msg_id"] for t in fake.templates] == ["order-1-paid"]  # delivered once
    assert msgid == 2_000_000_001


def test_without_client_msg_id_a_lost_answer_is_not_retried(call: Caller, fake: FakeWeChat) -> None:
    fake.drop_next(TEMPLATE_PATH, processed=True)
    with pytest.raises(APIUnavailable, match="not repeated"):
        call("send_template", OPENID, "T", {"thing1": "paid"})
    assert len(fake.calls(TEMPLATE_PATH)) == 1


def test_an_invalid_value_is_typed(call: Caller, fake: FakeWeChat) -> None:
    fake.fail_next(TEMPLATE_PATH, 47003, errmsg="argument invalid! data.phrase4.value invalid")
    with pytest.raises(ArgumentInvalid) as info:
        call("send_template", OPENID, "T", {"phrase4": "太长的短语了"})
    assert info.value.errmsg == "argument invalid! data.phrase4.value invalid"


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"data": {}}, "data is empty"),
        ({"data": {"thing1": {"color": "#fff"}}}, "data['thing1'] has no 'value'"),
        ({"miniprogram": {"appid": "wx"}}, "miniprogram needs 'appid' and 'pagepath'"),
        ({"template_id": ""}, "openid and template_id must not be empty"),
    ],
)
def test_template_arguments_are_checked(
    call: Caller, fake: FakeWeChat, kwargs: dict[str, Any], complaint: str
) -> None:
    arguments = {"openid": OPENID, "template_id": "T", "data": {"thing1": "x"}, **kwargs}
    with pytest.raises(ValueError, match=complaint.replace("[", r"\[").replace("]", r"\]")):
        call("send_template", **arguments)
    assert fake.requests == []


# -- subscribe messages -------------------------------------------------------------------


def test_a_mini_program_subscribe_message(call: Caller, fake: FakeWeChat) -> None:
    answer = call(
        "send_subscribe_message",
        OPENID,
        "TPL",
        {"thing1": "订单已发货", "time2": {"value": "2024-01-01 12:00", "color": "#ignored"}},
        page="pages/order?id=1",
        miniprogram_state="formal",
        lang="zh_CN",
    )
    assert answer == {"errcode": 0, "errmsg": "ok"}
    assert fake.subscribe_messages == [
        {
            "touser": OPENID,
            "template_id": "TPL",
            "page": "pages/order?id=1",
            "miniprogram_state": "formal",
            "lang": "zh_CN",
            "data": {"thing1": {"value": "订单已发货"}, "time2": {"value": "2024-01-01 12:00"}},
        }
    ]
    assert [r.path for r in fake.requests][-1] == SUBSCRIBE_PATH


def test_an_official_account_subscribe_notice(call: Caller, fake: FakeWeChat) -> None:
    call(
        "send_subscribe_notice",
        OPENID,
        "TPL",
        {"thing1": "预约成功"},
        page="https://example.com/booking",
        miniprogram=PAGE,
    )
    assert fake.subscribe_notices == [
        {
            "touser": OPENID,
            "template_id": "TPL",
            "page": "https://example.com/booking",
            "miniprogram": PAGE,
            "data": {"thing1": {"value": "预约成功"}},
        }
    ]
    assert [r.path for r in fake.requests][-1] == BIZSEND_PATH
    assert fake.subscribe_messages == []


@pytest.mark.parametrize("method", ["send_subscribe_message", "send_subscribe_notice"])
def test_a_refused_subscription_is_typed(call: Caller, fake: FakeWeChat, method: str) -> None:
    fake.fail_next(SUBSCRIBE_PATH, 43101, errmsg="user refuse to accept the msg")
    fake.fail_next(BIZSEND_PATH, 43101, errmsg="user refuse to accept the msg")
    with pytest.raises(SubscriptionRefused):
        call(method, OPENID, "TPL", {"thing1": "x"})


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        ({"thing1": "一" * 21}, "data.thing1: a thing value takes at most 20 characters (got 21)"),
        ({"character_string2": "x" * 33}, "a character_string value takes at most 32"),
        ({"phrase3": "六个字的短语"}, "a phrase value takes at most 5 characters (got 6)"),
        ({"number12": "1" * 33}, "a number value takes at most 32"),
        ({"phone_number4": "1" * 18}, "a phone_number value takes at most 17"),
        ({"car_number5": "粤B1234567"}, "a car_number value takes at most 8 characters (got 9)"),
        ({"symbol6": "%%%%%%"}, "a symbol value takes at most 5"),
        ({"letter7": "a" * 33}, "a letter value takes at most 32"),
        ({"name8": "欧阳" * 5 + "娜"}, "data.name8: a name takes at most 10 CJK characters"),
        ({"name8": "a" * 21}, "a name takes at most 10 CJK characters or 20 letters"),
    ],
)
@pytest.mark.parametrize("method", ["send_subscribe_message", "send_subscribe_notice"])
def test_subscribe_values_are_checked_by_key_type(
    call: Caller, fake: FakeWeChat, method: str, data: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        call(method, OPENID, "TPL", data)
    assert fake.requests == []


def test_values_at_their_limits_are_sent(call: Caller, fake: FakeWeChat) -> None:
    data = {
        "thing1": "一" * 20,
        "phrase2": "五个字短语",
        "name3": "欧阳" * 5,
        "name4": "a" * 20,
        "amount5": "¥100.00元",  # no length rule
        "custom": "x" * 100,  # not a typed key: WeChat decides
    }
    call("send_subscribe_message", OPENID, "TPL", data)
    assert len(fake.subscribe_messages) == 1


@pytest.mark.parametrize(
    ("kwargs", "complaint"),
    [
        ({"miniprogram_state": "beta"}, "miniprogram_state must be one of"),
        ({"lang": "fr"}, "lang must be one of"),
    ],
)
def test_subscribe_options_are_checked(
    call: Caller, fake: FakeWeChat, kwargs: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ValueError, match=complaint):
        call("send_subscribe_message", OPENID, "TPL", {"thing1": "x"}, **kwargs)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("method", "what"),
    [("send_template", "template messages"), ("send_subscribe_notice", "subscribe notices")],
)
def test_official_account_messages_refuse_a_mini_program(
    fake: FakeWeChat, method: str, what: str
) -> None:
    call = Caller("sync", base_url=fake.url, miniprogram=True)
    with pytest.raises(ValueError, match=f"{what} are for Official Accounts"):
        call(method, OPENID, "T", {"thing1": "x"})
    call.close()
