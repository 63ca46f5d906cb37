"""The API client: one shared access_token, one refresh on 40001, typed errors, exact bodies."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from app.client import APIError, APIUnavailable, ErrorCode, WeChatAPI
from app.store import MemoryStore, SQLiteStore
from tests.fakewechat import FakeWeChat

APPID = "wx1a2b3c4d5e6f7a8b"
SECRET = "0123456789abcdef0123456789abcdef"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"


class RecordingTransport:
    """A transport that answers from a script and records what was sent."""

    def __init__(self, *answers: dict[str, Any] | Exception) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, Mapping[str, Any] | None]] = []

    def __call__(self, method: str, url: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        self.sent.append((method, url, body))
        answer = self.answers.pop(0) if self.answers else {"errcode": 0, "errmsg": "ok"}
        if isinstance(answer, Exception):
            raise answer
        return answer


TOKEN_ANSWER = {"access_token": "T1", "expires_in": 7200}


@pytest.fixture
def fake() -> Iterator[FakeWeChat]:
    with FakeWeChat(APPID, SECRET) as server:
        yield server


def api_for(fake: FakeWeChat, store: Any = None, **options: Any) -> WeChatAPI:
    return WeChatAPI(APPID, SECRET, store or MemoryStore(), base_url=fake.url, **options)


def test_token_is_fetched_once_and_reused() -> None:
    transport = RecordingTransport(TOKEN_ANSWER)
    api = WeChatAPI(APPID, SECRET, MemoryStore(), transport=transport)
    for _ in range(3):
        api.send_text(OPENID, "hi")
    methods_and_paths = [(m, url.split("?")[0]) for m, url, _ in transport.sent]
    assert methods_and_paths == [
        ("POST", "https://api.weixin.qq.com/cgi-bin/stable_token"),
        *[("POST", "https://api.weixin.qq.com/cgi-bin/message/custom/send")] * 3,
    ]
    assert transport.sent[0][2] == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": False,
    }
    assert transport.sent[1][1].endswith("?access_token=T1")


def test_classic_endpoint_is_a_get_with_the_credentials_in_the_query() -> None:
    transport = RecordingTransport(TOKEN_ANSWER)
    WeChatAPI(APPID, SECRET, MemoryStore(), transport=transport, token_endpoint="classic").typing(
        OPENID
    )
    method, url, body = transport.sent[0]
    assert (method, body) == ("GET", None)
    assert url == (
        "https://api.weixin.qq.com/cgi-bin/token?grant_type=client_credential"
        f"&appid={APPID}&secret={SECRET}"
    )


def test_token_is_refreshed_ahead_of_expiry() -> None:
    transport = RecordingTransport({"access_token": "T1", "expires_in": 0.4}, TOKEN_ANSWER)
    api = WeChatAPI(APPID, SECRET, MemoryStore(), transport=transport, refresh_margin=300)
    assert api.access_token() == "T1"
    assert api.access_token() == "T1"
    time.sleep(0.3)  # past half of the 0.4 s life
    assert api.access_token() == "T1"  # TOKEN_ANSWER's token is "T1" as well
    assert [url.split("?")[0].rsplit("/", 1)[1] for _, url, _ in transport.sent] == [
        "stable_token",
        "stable_token",
    ]


def test_refused_token_is_refreshed_once_and_the_call_succeeds(fake: FakeWeChat) -> None:
    api = api_for(fake)
    api.send_text(OPENID, "first")
    fake.fail_next("/cgi-bin/message/custom/send", ErrorCode.INVALID_CREDENTIAL)
    api.send_text(OPENID, "second")
    assert fake.token_requests == 2
    assert [m["text"]["content"] for m in fake.messages] == ["first", "second"]


def test_a_token_revoked_elsewhere_is_replaced(fake: FakeWeChat) -> None:
    api = api_for(fake)
    api.send_text(OPENID, "before")
    fake.revoke_tokens()
    api.send_text(OPENID, "after")
    assert fake.token_requests == 2
    assert len(fake.messages) == 2


def test_refused_twice_is_an_api_error(fake: FakeWeChat) -> None:
    api = api_for(fake)
    fake.fail_next("/cgi-bin/message/custom/send", 42001, times=2)
    with pytest.raises(APIError) as info:
        api.send_text(OPENID, "x")
    assert (info.value.errcode, info.value.errmsg) == (42001, "scripted failure 42001")
    assert "ACCESS_TOKEN_EXPIRED" in info.value.message
    assert fake.token_requests == 2


def test_other_errors_are_not_retried(fake: FakeWeChat) -> None:
    api = api_for(fake)
    fake.fail_next("/cgi-bin/message/custom/send", ErrorCode.REPLY_WINDOW_PASSED)
    with pytest.raises(APIError) as info:
        api.send_text(OPENID, "x")
    assert info.value.errcode == 45015
    assert info.value.message.startswith("/cgi-bin/message/custom/send failed: errcode 45015")
    assert fake.messages == []


def test_wrong_secret_names_the_error_but_not_the_secret(fake: FakeWeChat) -> None:
    api = WeChatAPI(APPID, "wrong" + SECRET[5:], MemoryStore(), base_url=fake.url)
    with pytest.raises(APIError) as info:
        api.access_token()
    assert info.value.errcode == 40001
    assert SECRET[5:] not in str(info.value)


def test_network_failures_are_retried_then_reported() -> None:
    transport = RecordingTransport(OSError("reset"), TimeoutError("slow"), TOKEN_ANSWER)
    api = WeChatAPI(APPID, SECRET, MemoryStore(), transport=transport, retries=2)
    assert api.access_token() == "T1"
    failing = RecordingTransport(*[ConnectionRefusedError("no")] * 3)
    api = WeChatAPI(APPID, SECRET, MemoryStore(), transport=failing, retries=2)
    with pytest.raises(APIUnavailable) as info:
        api.access_token()
    assert "unreachable after 3 attempts" in info.value.message
    assert SECRET not in info.value.message
    assert len(failing.sent) == 3


def test_unreachable_server_is_api_unavailable() -> None:
    api = WeChatAPI(APPID, SECRET, MemoryStore(), base_url="http://127.0.0.1:1", retries=1)
    with pytest.raises(APIUnavailable):
        api.send_text(OPENID, "x")


@pytest.mark.parametrize(
    ("call", "msgtype", "payload"),
    [
        (lambda a: a.send_text(OPENID, "你好"), "text", {"content": "你好"}),
        (lambda a: a.send_image(OPENID, "M1"), "image", {"media_id": "M1"}),
        (lambda a: a.send_voice(OPENID, "M2"), "voice", {"media_id": "M2"}),
        (
            lambda a: a.send_video(OPENID, "M3", "T3", "title", "desc"),
            "video",
            {"media_id": "M3", "thumb_media_id": "T3", "title": "title", "description": "desc"},
        ),
        (
            lambda a: a.send_music(
                OPENID,
                title="t",
                description="d",
                music_url="http://m",
                hq_music_url="http://hq",
                thumb_media_id="T4",
            ),
            "music",
            {
                "title": "t",
                "description": "d",
                "musicurl": "http://m",
                "hqmusicurl": "http://hq",
                "thumb_media_id": "T4",
            },
        ),
        (
            lambda a: a.send_news(
                OPENID, [{"title": "t", "description": "d", "url": "u", "picurl": "p"}]
            ),
            "news",
            {"articles": [{"title": "t", "description": "d", "url": "u", "picurl": "p"}]},
        ),
        (lambda a: a.send_mpnews(OPENID, "M5"), "mpnews", {"media_id": "M5"}),
        (
            lambda a: a.send_msgmenu(
                OPENID, "Rate us", [("101", "Good"), ("102", "Bad")], "Thanks"
            ),
            "msgmenu",
            {
                "head_content": "Rate us",
                "list": [{"id": "101", "content": "Good"}, {"id": "102", "content": "Bad"}],
                "tail_content": "Thanks",
            },
        ),
        (
            lambda a: a.send_miniprogrampage(OPENID, "t", "pages/index", "T6", appid="wxmini"),
            "miniprogrampage",
            {"title": "t", "pagepath": "pages/index", "thumb_media_id": "T6", "appid": "wxmini"},
        ),
        (
            lambda a: a.send_miniprogrampage(OPENID, "t", "pages/index", "T6"),
            "miniprogrampage",
            {"title": "t", "pagepath": "pages/index", "thumb_media_id": "T6"},
        ),
        (
            lambda a: a.send_link(OPENID, "t", "d", "https://x", "https://thumb"),
            "link",
            {"title": "t", "description": "d", "url": "https://x", "thumb_url": "https://thumb"},
        ),
    ],
)
def test_customer_service_bodies(
    fake: FakeWeChat, call: Any, msgtype: str, payload: dict[str, Any]
) -> None:
    call(api_for(fake))
    assert fake.messages == [{"touser": OPENID, "msgtype": msgtype, msgtype: payload}]


def test_typing_indicator(fake: FakeWeChat) -> None:
    api = api_for(fake)
    api.typing(OPENID)
    api.typing(OPENID, on=False)
    assert fake.typing == [
        {"touser": OPENID, "command": "Typing"},
        {"touser": OPENID, "command": "CancelTyping"},
    ]


def _calls_from_a_process(url: str, db: str, endpoint: str, calls: int) -> None:
    store = SQLiteStore(db)
    api = WeChatAPI(APPID, SECRET, store, base_url=url, token_endpoint=endpoint)
    for n in range(calls):
        api.typing(f"o{n}")
    store.close()


@pytest.mark.parametrize("endpoint", ["stable", "classic"])
def test_four_processes_from_a_cold_cache_fetch_one_token(
    fake: FakeWeChat, tmp_path: Path, endpoint: str
) -> None:
    context = multiprocessing.get_context("spawn")
    db = str(tmp_path / "tokens.db")
    processes = [
        context.Process(target=_calls_from_a_process, args=(fake.url, db, endpoint, 200))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert fake.token_requests == 1
    assert len(fake.typing) == 800
