"""How calls travel: exact bytes, answers read by WeChat's rules, typed errors, retries that
never send a message twice, kept connections, and no secret in any error or log line."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.api import (
    APIError,
    APIUnavailable,
    ArgumentInvalid,
    AsyncWeChatAPI,
    DailyQuotaReached,
    ErrorCode,
    InvalidMediaID,
    InvalidOpenID,
    InvalidTemplateID,
    IPNotWhitelisted,
    MinuteQuotaReached,
    NoMenu,
    NotFollowing,
    QuotaReached,
    ReplyWindowPassed,
    SubscriptionRefused,
    SystemBusy,
    TooManyReplies,
    Unauthorized,
    WeChatAPI,
    WeChatAPIError,
)
from app.store import MemoryStore
from tests.apikit import (  # noqa: F401 - fixtures
    APPID,
    BASE,
    OPENID,
    SECRET,
    Caller,
    Script,
    api_for,
    call_fixture,
    fake_fixture,
    scripted,
    scripted_call_fixture,
    token,
)
from tests.fakewechat import SEND_PATH, STABLE_TOKEN_PATH, TYPING_PATH, FakeWeChat

# -- what goes over the wire --------------------------------------------------------------


def test_the_body_is_compact_utf8_json_without_escapes(
    scripted_call: Callable[..., Caller],
) -> None:
    script = Script(token("T1"))
    scripted_call(script)("send_text", OPENID, "你好 😀")
    request = script.sent[1]
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    assert request.content == (
        f'{{"touser":"{OPENID}","msgtype":"text","text":{{"content":"你好 😀"}}}}'.encode()
    )


def test_a_success_may_come_without_errcode(scripted_call: Callable[..., Caller]) -> None:
    script = Script(token("T1"), {"errmsg": "ok"})
    assert scripted_call(script)("send_text", OPENID, "x") == {"errmsg": "ok"}


def test_an_errcode_may_come_as_a_string(scripted_call: Callable[..., Caller]) -> None:
    script = Script(token("T1"), {"errcode": "45015", "errmsg": "response out of time limit"})
    with pytest.raises(ReplyWindowPassed) as info:
        scripted_call(script)("send_text", OPENID, "x")
    assert info.value.errcode is ErrorCode.REPLY_WINDOW_PASSED


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (httpx.Response(200, text="<html>proxy error</html>"), "answer is not JSON"),
        (httpx.Response(200, json=[1, 2]), "answer is a JSON list, not an object"),
        (httpx.Response(502, text="bad gateway"), "HTTP 502"),
        (httpx.Response(200, json={"errcode": "busy"}), "errcode 'busy' is not a number"),
    ],
    ids=["html", "list", "502", "errcode-text"],
)
def test_answers_that_are_not_wechats_are_api_unavailable(
    scripted_call: Callable[..., Caller], answer: httpx.Response, reason: str
) -> None:
    script = Script(token("T1"), answer)
    with pytest.raises(APIUnavailable) as info:
        scripted_call(script, retries=2)("send_text", OPENID, "x")
    maybe_sent = "; not repeated, as it may have reached WeChat"
    retryable = reason != "errcode 'busy' is not a number"
    assert info.value.message == (
        f"POST {SEND_PATH}: no usable answer after 1 attempt(s) ({reason})"
        + (maybe_sent if retryable else "")
    )


def test_an_oversized_answer_is_not_read_whole() -> None:
    script = Script(token("T1"), httpx.Response(200, content=b"{" + b" " * (2 << 20) + b"}"))
    with pytest.raises(APIUnavailable, match="answer is larger than 1048576 bytes"):
        scripted(script).send_text(OPENID, "x")


# -- typed errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errcode", "error_type"),
    [
        (-1, SystemBusy),
        (-1000, SystemBusy),
        (40003, InvalidOpenID),
        (40007, InvalidMediaID),
        (40037, InvalidTemplateID),
        (40164, IPNotWhitelisted),
        (61004, IPNotWhitelisted),
        (43004, NotFollowing),
        (43101, SubscriptionRefused),
        (45009, DailyQuotaReached),
        (45011, MinuteQuotaReached),
        (45015, ReplyWindowPassed),
        (45047, TooManyReplies),
        (46003, NoMenu),
        (47003, ArgumentInvalid),
        (48001, Unauthorized),
        (45002, APIError),
    ],
)
def test_each_errcode_a_handler_branches_on_has_its_class(
    call: Caller, fake: FakeWeChat, errcode: int, error_type: type[APIError]
) -> None:
    fake.fail_next(SEND_PATH, errcode, errmsg="refused rid: 1a2b")
    with pytest.raises(APIError) as info:
        call("send_text", OPENID, "x")
    error = info.value
    assert (type(error), error.errcode, error.errmsg, error.path) == (
        error_type,
        errcode,
        "refused rid: 1a2b",
        SEND_PATH,
    )
    assert error.message == (
        f"{SEND_PATH} answered errcode {errcode} ({ErrorCode(errcode).name}): refused rid: 1a2b"
    )
    assert isinstance(error, WeChatAPIError)
    assert len(fake.calls(SEND_PATH)) == 1  # no retry: the message may have been refused


def test_quota_errors_share_a_base() -> None:
    assert issubclass(DailyQuotaReached, QuotaReached)
    assert issubclass(MinuteQuotaReached, QuotaReached)


def test_an_unknown_errcode_is_kept_as_a_number(scripted_call: Callable[..., Caller]) -> None:
    script = Script(token("T1"), {"errcode": 99999, "errmsg": "new"})
    with pytest.raises(APIError) as info:
        scripted_call(script)("send_image", OPENID, "M")
    assert (type(info.value), type(info.value.errcode), info.value.errcode) == (
        APIError,
        int,
        99999,
    )
    assert info.value.message == f"{SEND_PATH} answered errcode 99999: new"


# -- retries ------------------------------------------------------------------------------


def test_token_fetches_are_retried_after_network_failures(
    scripted_call: Callable[..., Caller],
) -> None:
    script = Script(httpx.RemoteProtocolError("reset"), httpx.ReadTimeout("timed out"), token("T"))
    assert scripted_call(script, retries=2)("access_token") == "T"
    assert len(script.sent) == 3


def test_network_failures_end_in_api_unavailable_after_the_retries(
    scripted_call: Callable[..., Caller],
) -> None:
    script = Script(*[httpx.ReadTimeout("timed out")] * 3)
    with pytest.raises(APIUnavailable) as info:
        scripted_call(script, retries=2)("access_token")
    assert info.value.message == (
        f"POST {STABLE_TOKEN_PATH}: no usable answer after 3 attempt(s) (ReadTimeout: timed out)"
    )
    assert len(script.sent) == 3


@pytest.mark.parametrize(
    "failure",
    [httpx.ReadTimeout("timed out"), httpx.RemoteProtocolError("Server disconnected")],
    ids=["timeout", "disconnected"],
)
def test_a_send_that_may_have_arrived_is_not_repeated(
    scripted_call: Callable[..., Caller], failure: Exception
) -> None:
    script = Script(token("T1"), failure)
    with pytest.raises(APIUnavailable) as info:
        scripted_call(script, retries=2)("send_text", OPENID, "hi")
    assert info.value.message == (
        f"POST {SEND_PATH}: no usable answer after 1 attempt(s)"
        f" ({type(failure).__name__}: {failure}); not repeated, as it may have reached WeChat"
    )
    assert script.paths == [STABLE_TOKEN_PATH, SEND_PATH]


def test_a_send_that_never_left_is_repeated(scripted_call: Callable[..., Caller]) -> None:
    script = Script(
        token("T1"), httpx.ConnectError("refused"), httpx.PoolTimeout("no free connection")
    )
    scripted_call(script, retries=2)("send_text", OPENID, "hi")
    assert script.paths == [STABLE_TOKEN_PATH, *[SEND_PATH] * 3]


def test_system_busy_is_retried_only_when_harmless(scripted_call: Callable[..., Caller]) -> None:
    busy = {"errcode": -1, "errmsg": "system error"}
    script = Script(token("T1"), busy, busy, {"errcode": 0}, busy)
    caller = scripted_call(script, retries=2)
    caller("typing", OPENID)  # idempotent: retried twice, then "ok"
    with pytest.raises(SystemBusy):
        caller("send_text", OPENID, "hi")  # a message: not repeated
    assert script.paths == [STABLE_TOKEN_PATH, *[TYPING_PATH] * 3, SEND_PATH]


def test_a_4xx_answer_is_not_retried(scripted_call: Callable[..., Caller]) -> None:
    script = Script(token("T1"), httpx.Response(403, text="forbidden"))
    with pytest.raises(APIUnavailable, match=r"after 1 attempt\(s\) \(HTTP 403\)$"):
        scripted_call(script, retries=2)("typing", OPENID)


def test_a_lost_answer_over_http_does_not_send_twice(call: Caller, fake: FakeWeChat) -> None:
    call.options["retries"] = 2
    fake.drop_next(SEND_PATH, processed=True)
    with pytest.raises(APIUnavailable, match="not repeated"):
        call("send_text", OPENID, "once")
    assert [m["text"]["content"] for m in fake.messages] == ["once"]


def test_a_lost_token_answer_over_http_is_retried(fake: FakeWeChat) -> None:
    fake.drop_next(STABLE_TOKEN_PATH, times=2)
    with api_for(fake, retries=2) as api:
        api.typing(OPENID)
    assert fake.token_requests == 3
    assert len(fake.typing) == 1


def test_a_slow_answer_times_out(fake: FakeWeChat) -> None:
    with api_for(fake, timeout=0.2) as api:
        api.access_token()
        fake.set_latency(1.0, SEND_PATH)
        with pytest.raises(APIUnavailable, match=r"\(ReadTimeout: timed out\); not repeated"):
            api.send_text(OPENID, "slow")


def test_an_unreachable_server_is_api_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with WeChatAPI(APPID, SECRET, MemoryStore(), base_url=url, retries=1, backoff=0) as api:
        with pytest.raises(APIUnavailable) as info:
            api.send_text(OPENID, "x")
    assert info.value.message.startswith(
        f"POST {STABLE_TOKEN_PATH}: no usable answer after 2 attempt(s) (ConnectError: "
    )


# -- kept connections ---------------------------------------------------------------------


def test_calls_reuse_one_connection(fake: FakeWeChat) -> None:
    with api_for(fake) as api:
        for n in range(10):
            api.typing(f"o{n}")
    assert fake.connections == 1


def test_async_calls_reuse_the_pool(fake: FakeWeChat) -> None:
    async def twice() -> None:
        async with AsyncWeChatAPI(APPID, SECRET, MemoryStore(), base_url=fake.url) as api:
            for _ in range(2):
                await asyncio.gather(*(api.typing(f"o{n}") for n in range(4)))

    asyncio.run(twice())
    assert len(fake.typing) == 8
    assert fake.connections <= 5  # the token fetch's, then at most 4 in parallel, reused


def test_a_closed_client_opens_new_connections(fake: FakeWeChat) -> None:
    api = api_for(fake)
    api.typing(OPENID)
    api.close()
    api.typing(OPENID)
    api.close()
    assert fake.connections == 2


# -- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"appsecret": ""}, "needs the AppID and the AppSecret"),
        ({"token_endpoint": "fast"}, "token_endpoint must be 'stable' or 'classic', not 'fast'"),
        ({"base_url": "api.weixin.qq.com"}, "base_url must be an http(s) URL"),
        ({"qrcode_base_url": "mp.weixin.qq.com"}, "qrcode_base_url must be an http(s) URL"),
        ({"retries": -1}, "not negative"),
        ({"max_connections": 0}, "max_connections must be at least 1, not 0"),
    ],
)
def test_bad_options_fail_at_construction(changes: dict[str, Any], complaint: str) -> None:
    arguments: dict[str, Any] = {"appid": APPID, "appsecret": SECRET, "store": MemoryStore()}
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        WeChatAPI(**{**arguments, **changes})


def test_a_transport_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(TypeError, match="AsyncWeChatAPI needs an AsyncBaseTransport, not"):
        AsyncWeChatAPI(APPID, SECRET, MemoryStore(), transport=httpx.HTTPTransport())


# -- secrets never leak -------------------------------------------------------------------


def test_secrets_and_tokens_are_kept_out_of_errors_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    live_token = "TOKEN-abcdef123456"

    def fails_naming_the_url() -> dict[str, Any]:
        raise httpx.ReadError(f"cannot read {BASE}{SEND_PATH}?access_token={live_token}")

    script = Script(
        httpx.ConnectError(f"GET {BASE}/cgi-bin/token?appid={APPID}&secret={SECRET} failed"),
        token(live_token),
        {"errcode": 40001, "errmsg": f"token {live_token} and secret {SECRET} are odd"},
        token(live_token + "2"),
        fails_naming_the_url,
    )
    api = scripted(script, token_endpoint="classic", retries=1)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(APIUnavailable) as info:
        api.send_text(OPENID, "hi")
    text = info.value.message + str(info.value) + caplog.text
    assert "access_token=***" in text and "secret=***" in text
    for secret in (SECRET, live_token):
        assert secret not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_httpx_request_log_lines_carry_no_token(
    fake: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with api_for(fake, token_endpoint="classic") as api:
        api.typing(OPENID)
        live_token = api.access_token()
    httpx_lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("typing?access_token=***" in line for line in httpx_lines)
    assert "secret=***" in caplog.text
    assert live_token not in caplog.text and SECRET not in caplog.text
