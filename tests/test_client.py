"""The API client: one shared access_token, one replacement on refusal, typed errors, exact bodies.

Two ways in: a scripted transport (what is sent, byte for byte, with no network) and the fake
API of ``tests/fakewechat.py`` over real HTTP (what WeChat would see, and how it answers).
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from app.api_transport import urllib_transport
from app.client import (
    APIError,
    APIUnavailable,
    ErrorCode,
    RequestNotSent,
    TokenRefreshTimeout,
    Transport,
    WeChatAPI,
    WeChatAPIError,
)
from app.store import MemoryStore, SQLiteStore, Store
from tests.fakewechat import SEND_PATH, STABLE_TOKEN_PATH, TOKEN_PATH, FakeWeChat

APPID = "wx1a2b3c4d5e6f7a8b"
SECRET = "0123456789abcdef0123456789abcdef"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"
BASE = "https://api.weixin.qq.com"
CACHE_KEY = f"access_token:{APPID}"

Answer = dict[str, Any] | Exception | Callable[[], dict[str, Any]]


class ScriptedTransport:
    """Answers from a script, in order, and records what was sent; then answers "ok"."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, Mapping[str, Any] | None]] = []

    def __call__(self, method: str, url: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        self.sent.append((method, url, body))
        answer = self.answers.pop(0) if self.answers else {"errcode": 0, "errmsg": "ok"}
        if isinstance(answer, Exception):
            raise answer
        return answer() if callable(answer) else answer

    @property
    def paths(self) -> list[str]:
        return [url.removeprefix(BASE).split("?")[0] for _, url, _ in self.sent]


def token(value: str, expires_in: float = 7200) -> dict[str, Any]:
    return {"access_token": value, "expires_in": expires_in}


def scripted(transport: Transport, *, store: Store | None = None, **options: Any) -> WeChatAPI:
    """A client on ``transport``, without backoff sleeps."""
    options.setdefault("backoff", 0)
    return WeChatAPI(APPID, SECRET, store or MemoryStore(), transport=transport, **options)


@pytest.fixture
def fake() -> Iterator[FakeWeChat]:
    with FakeWeChat(APPID, SECRET) as server:
        yield server


def api_for(fake: FakeWeChat, store: Store | None = None, **options: Any) -> WeChatAPI:
    options.setdefault("backoff", 0)
    return WeChatAPI(APPID, SECRET, store or MemoryStore(), base_url=fake.url, **options)


# -- the access_token, through the transport seam ----------------------------------------


def test_token_is_fetched_once_and_reused() -> None:
    transport = ScriptedTransport(token("T1"))
    api = scripted(transport)
    for _ in range(3):
        api.send_text(OPENID, "hi")
    assert transport.paths == [STABLE_TOKEN_PATH, *[SEND_PATH] * 3]
    assert transport.sent[0] == (
        "POST",
        BASE + STABLE_TOKEN_PATH,
        {
            "grant_type": "client_credential",
            "appid": APPID,
            "secret": SECRET,
            "force_refresh": False,
        },
    )
    assert transport.sent[1][1] == BASE + SEND_PATH + "?access_token=T1"


def test_classic_endpoint_is_a_get_with_the_credentials_in_the_query() -> None:
    transport = ScriptedTransport(token("T1"))
    scripted(transport, token_endpoint="classic").typing(OPENID)
    assert transport.sent[0] == (
        "GET",
        f"{BASE}{TOKEN_PATH}?grant_type=client_credential&appid={APPID}&secret={SECRET}",
        None,
    )


@pytest.mark.parametrize(
    ("expires_in", "margin", "ttl"),
    [(7200, 300, 6900), (400, 300, 200), (1, 300, 0.5)],
    ids=["margin", "half-life-wins", "short-token"],
)
def test_token_is_cached_as_json_until_the_refresh_point(
    expires_in: float, margin: float, ttl: float
) -> None:
    class RecordingStore(MemoryStore):
        def set(self, key: str, value: bytes, ttl: float) -> None:
            writes.append((key, json.loads(value), ttl))
            super().set(key, value, ttl)

    writes: list[tuple[str, dict[str, Any], float]] = []
    before = time.time()
    scripted(
        ScriptedTransport(token("T1", expires_in)), store=RecordingStore(), refresh_margin=margin
    ).access_token()
    [(key, entry, stored_ttl)] = writes
    assert (key, sorted(entry), entry["access_token"], stored_ttl) == (
        CACHE_KEY,
        ["access_token", "expires_at"],
        "T1",
        ttl,
    )
    assert before + expires_in <= entry["expires_at"] <= time.time() + expires_in


def test_token_is_refreshed_ahead_of_expiry() -> None:
    transport = ScriptedTransport(token("T1", 0.5), token("T2", 0.5))
    api = scripted(transport, refresh_margin=0.2)
    assert api.access_token() == "T1"
    assert api.access_token() == "T1"
    time.sleep(0.35)  # past the refresh point (0.3 s), before expiry (0.5 s)
    assert api.access_token() == "T2"
    assert transport.paths == [STABLE_TOKEN_PATH, STABLE_TOKEN_PATH]
    assert [body["force_refresh"] for _, _, body in transport.sent if body] == [False, False]


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_refused_token_is_replaced_once_with_force_refresh(errcode: int) -> None:
    refused = {"errcode": errcode, "errmsg": "refused"}
    transport = ScriptedTransport(token("T1"), refused, token("T2"))
    store = MemoryStore()
    assert scripted(transport, store=store).send_text(OPENID, "hi") == {
        "errcode": 0,
        "errmsg": "ok",
    }
    assert transport.paths == [STABLE_TOKEN_PATH, SEND_PATH, STABLE_TOKEN_PATH, SEND_PATH]
    assert transport.sent[2][2] is not None and transport.sent[2][2]["force_refresh"] is True
    assert transport.sent[3][1].endswith("?access_token=T2")
    assert json.loads(store.get(CACHE_KEY) or b"")["access_token"] == "T2"


def test_a_token_another_process_cached_is_used_not_replaced() -> None:
    store = MemoryStore()

    def refused_after_another_process_refreshed() -> dict[str, Any]:
        entry = {"access_token": "T2", "expires_at": time.time() + 7200}
        store.set(CACHE_KEY, json.dumps(entry).encode(), 6900)
        return {"errcode": 40001, "errmsg": "invalid credential"}

    transport = ScriptedTransport(token("T1"), refused_after_another_process_refreshed)
    scripted(transport, store=store).send_text(OPENID, "hi")
    assert transport.paths == [STABLE_TOKEN_PATH, SEND_PATH, SEND_PATH]
    assert transport.sent[2][1].endswith("?access_token=T2")


def test_a_refused_token_is_dropped_from_the_cache_even_if_no_new_one_comes() -> None:
    store = MemoryStore()
    quota = {"errcode": 45011, "errmsg": "api minute-quota reach limit"}
    transport = ScriptedTransport(token("T1"), {"errcode": 40001, "errmsg": "x"}, quota)
    with pytest.raises(APIError) as info:
        scripted(transport, store=store).send_text(OPENID, "hi")
    assert (info.value.errcode, info.value.path) == (ErrorCode.MINUTE_QUOTA, STABLE_TOKEN_PATH)
    assert store.get(CACHE_KEY) is None


def test_a_malformed_cache_entry_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    store.set(CACHE_KEY, b"T0-raw-token-of-an-older-version", 60)
    assert scripted(ScriptedTransport(token("T1")), store=store).access_token() == "T1"
    assert "malformed cached access_token" in caplog.text


def _hold_refresh_lock(
    store: Store, held: threading.Event, release: threading.Event, then: Callable[[], None]
) -> None:
    with store.lock(f"token-refresh:{APPID}", ttl=5, wait=0):
        held.set()
        time.sleep(0.1)
        then()
        release.wait(5)


@pytest.mark.parametrize("refreshed_meanwhile", [True, False])
def test_a_refresh_lock_held_elsewhere(refreshed_meanwhile: bool) -> None:
    store = MemoryStore()
    held, release = threading.Event(), threading.Event()

    def other_process_caches_a_token() -> None:
        if refreshed_meanwhile:
            entry = {"access_token": "T9", "expires_at": time.time() + 7200}
            store.set(CACHE_KEY, json.dumps(entry).encode(), 6900)

    holder = threading.Thread(
        target=_hold_refresh_lock, args=(store, held, release, other_process_caches_a_token)
    )
    holder.start()
    try:
        held.wait(5)
        transport = ScriptedTransport(token("T1"))
        api = scripted(transport, store=store, lock_wait=0.4)
        if refreshed_meanwhile:
            assert api.access_token() == "T9"
        else:
            with pytest.raises(TokenRefreshTimeout) as info:
                api.access_token()
            assert info.value.message == (
                f"another process held the access_token refresh lock of {APPID} for 0.4 s and"
                " cached no usable token"
            )
            assert isinstance(info.value, APIUnavailable)
        assert transport.sent == []
    finally:
        release.set()
        holder.join()


# -- network failures ---------------------------------------------------------------------


def test_token_fetches_are_retried_after_network_failures() -> None:
    transport = ScriptedTransport(
        ConnectionResetError("reset"), TimeoutError("timed out"), token("T1")
    )
    assert scripted(transport, retries=2).access_token() == "T1"
    assert len(transport.sent) == 3


def test_network_failures_end_in_api_unavailable_after_the_retries() -> None:
    transport = ScriptedTransport(*[TimeoutError("timed out")] * 3)
    with pytest.raises(APIUnavailable) as info:
        scripted(transport, retries=2).access_token()
    assert info.value.message == (
        f"POST {STABLE_TOKEN_PATH}: no usable answer after 3 attempt(s) (TimeoutError: timed out)"
    )
    assert len(transport.sent) == 3


def test_a_send_that_may_have_arrived_is_not_repeated() -> None:
    transport = ScriptedTransport(token("T1"), TimeoutError("timed out"))
    with pytest.raises(APIUnavailable) as info:
        scripted(transport, retries=2).send_text(OPENID, "hi")
    assert info.value.message == (
        f"POST {SEND_PATH}: no usable answer after 1 attempt(s) (TimeoutError: timed out);"
        " not repeated, as it may have reached WeChat"
    )
    assert transport.paths == [STABLE_TOKEN_PATH, SEND_PATH]


def test_a_send_that_never_left_is_repeated() -> None:
    transport = ScriptedTransport(
        token("T1"), RequestNotSent("not sent: refused"), ConnectionRefusedError()
    )
    scripted(transport, retries=2).send_text(OPENID, "hi")
    assert transport.paths == [STABLE_TOKEN_PATH, *[SEND_PATH] * 3]


def test_a_lost_answer_over_http_does_not_send_twice(fake: FakeWeChat) -> None:
    api = api_for(fake, retries=2)
    fake.drop_next(SEND_PATH, processed=True)
    with pytest.raises(APIUnavailable, match="not repeated"):
        api.send_text(OPENID, "once")
    assert [m["text"]["content"] for m in fake.messages] == ["once"]


def test_a_lost_token_answer_over_http_is_retried(fake: FakeWeChat) -> None:
    fake.drop_next(STABLE_TOKEN_PATH, times=2)
    api_for(fake, retries=2).typing(OPENID)
    assert fake.token_requests == 3
    assert len(fake.typing) == 1


def test_a_slow_answer_times_out(fake: FakeWeChat) -> None:
    api = api_for(fake, timeout=0.2)
    api.access_token()
    fake.set_latency(1.0, SEND_PATH)
    started = time.monotonic()
    with pytest.raises(APIUnavailable, match=r"TimeoutError: timed out\); not repeated"):
        api.send_text(OPENID, "slow")
    assert time.monotonic() - started < 0.9


def test_an_unreachable_server_is_api_unavailable() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = WeChatAPI(
        APPID, SECRET, MemoryStore(), base_url=f"http://127.0.0.1:{port}", retries=1, backoff=0
    )
    with pytest.raises(APIUnavailable) as info:
        api.send_text(OPENID, "x")
    assert info.value.message.startswith(
        f"POST {STABLE_TOKEN_PATH}: no usable answer after 2 attempt(s) (RequestNotSent: not sent: "
    )


# -- WeChat's refusals, over HTTP ---------------------------------------------------------


def test_refused_once_is_replaced_and_the_call_succeeds(fake: FakeWeChat) -> None:
    api = api_for(fake)
    api.send_text(OPENID, "first")
    fake.fail_next(SEND_PATH, ErrorCode.INVALID_CREDENTIAL)
    api.send_text(OPENID, "second")
    assert fake.token_requests == 2
    assert [m["text"]["content"] for m in fake.messages] == ["first", "second"]


@pytest.mark.parametrize("kill", ["revoke_tokens", "expire_tokens"])
def test_a_token_killed_elsewhere_is_replaced(fake: FakeWeChat, kill: str) -> None:
    api = api_for(fake)
    api.send_text(OPENID, "before")
    getattr(fake, kill)()
    api.send_text(OPENID, "after")
    assert [r.errcode for r in fake.requests if r.path == SEND_PATH] == [
        0,
        40001 if kill == "revoke_tokens" else 42001,
        0,
    ]
    assert fake.token_requests == 2


def test_refused_twice_is_an_api_error(fake: FakeWeChat) -> None:
    fake.fail_next(SEND_PATH, 42001, times=2, errmsg="access_token expired rid: 6543-21")
    with pytest.raises(APIError) as info:
        api_for(fake).send_text(OPENID, "x")
    error = info.value
    assert (error.errcode, error.errmsg, error.path) == (
        ErrorCode.ACCESS_TOKEN_EXPIRED,
        "access_token expired rid: 6543-21",
        SEND_PATH,
    )
    assert error.message == (
        f"{SEND_PATH} answered errcode 42001 (ACCESS_TOKEN_EXPIRED):"
        " access_token expired rid: 6543-21"
    )
    assert fake.token_requests == 2
    assert fake.messages == []


def test_other_errors_are_not_retried(fake: FakeWeChat) -> None:
    fake.fail_next(SEND_PATH, ErrorCode.REPLY_WINDOW_PASSED, errmsg="response out of time limit")
    with pytest.raises(APIError) as info:
        api_for(fake).send_text(OPENID, "x")
    assert info.value.errcode is ErrorCode.REPLY_WINDOW_PASSED
    assert isinstance(info.value, WeChatAPIError)
    assert fake.token_requests == 1
    assert len([r for r in fake.requests if r.path == SEND_PATH]) == 1


def test_an_unknown_errcode_is_kept_as_a_number() -> None:
    transport = ScriptedTransport(token("T1"), {"errcode": 99999, "errmsg": "new"})
    with pytest.raises(APIError) as info:
        scripted(transport).send_image(OPENID, "M")
    assert (type(info.value.errcode), info.value.errcode) == (int, 99999)
    assert info.value.message == f"{SEND_PATH} answered errcode 99999: new"


@pytest.mark.parametrize(("appid", "errcode"), [("wxWRONG", 40013), (APPID, 40001)])
@pytest.mark.parametrize("endpoint", ["stable", "classic"])
def test_wrong_credentials(fake: FakeWeChat, appid: str, errcode: int, endpoint: str) -> None:
    api = WeChatAPI(appid, "f" * 32, MemoryStore(), base_url=fake.url, token_endpoint=endpoint)
    with pytest.raises(APIError) as info:
        api.typing(OPENID)
    assert info.value.errcode == errcode
    assert "f" * 32 not in info.value.message
    assert fake.typing == []


# -- secrets never leak -------------------------------------------------------------------


def test_secrets_and_tokens_are_kept_out_of_errors_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    live_token = "TOKEN-abcdef123456"

    def fails_naming_the_url() -> dict[str, Any]:
        raise OSError(f"cannot reach {BASE}{SEND_PATH}?access_token={live_token}")

    transport = ScriptedTransport(
        OSError(f"GET {BASE}/cgi-bin/token?appid={APPID}&secret={SECRET} failed"),
        token(live_token),
        {"errcode": 40001, "errmsg": f"token {live_token} and secret {SECRET} are odd"},
        token(live_token + "2"),
        fails_naming_the_url,
    )
    api = scripted(transport, token_endpoint="classic", retries=1)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(APIUnavailable) as info:
        api.send_text(OPENID, "hi")
    text = info.value.message + str(info.value) + caplog.text
    assert "access_token=***" in text and "secret=***" in text
    for secret in (SECRET, live_token):
        assert secret not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"appsecret": ""}, "needs the AppID and the AppSecret"),
        ({"token_endpoint": "fast"}, "token_endpoint must be 'stable' or 'classic', not 'fast'"),
        ({"base_url": "api.weixin.qq.com"}, "base_url must be an http(s) URL"),
        ({"retries": -1}, "not negative"),
    ],
)
def test_bad_options_fail_at_construction(changes: dict[str, Any], complaint: str) -> None:
    arguments: dict[str, Any] = {"appid": APPID, "appsecret": SECRET, "store": MemoryStore()}
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        WeChatAPI(**{**arguments, **changes})


# -- customer-service messages ------------------------------------------------------------

ARTICLE = {"title": "t", "description": "d", "url": "https://u", "picurl": "https://p"}


@pytest.mark.parametrize(
    ("send", "msgtype", "payload"),
    [
        (lambda a: a.send_text(OPENID, "你好 <b>"), "text", {"content": "你好 <b>"}),
        (lambda a: a.send_image(OPENID, "M1"), "image", {"media_id": "M1"}),
        (lambda a: a.send_voice(OPENID, "M2"), "voice", {"media_id": "M2"}),
        (
            lambda a: a.send_video(OPENID, "M3", "T3", "title", "desc"),
            "video",
            {"media_id": "M3", "thumb_media_id": "T3", "title": "title", "description": "desc"},
        ),
        (
            lambda a: a.send_music(
                OPENID, "http://m", "http://hq", "T4", title="t", description="d"
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
        (lambda a: a.send_news(OPENID, [ARTICLE]), "news", {"articles": [ARTICLE]}),
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
        (lambda a: a.send_wxcard(OPENID, "C1"), "wxcard", {"card_id": "C1"}),
        (
            lambda a: a.send_miniprogrampage(OPENID, "t", "pages/index", "T6", appid="wxmini"),
            "miniprogrampage",
            {"title": "t", "appid": "wxmini", "pagepath": "pages/index", "thumb_media_id": "T6"},
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
        (
            lambda a: a.send_custom(OPENID, "text", {"content": "generic"}),
            "text",
            {"content": "generic"},
        ),
    ],
    ids=[
        "text",
        "image",
        "voice",
        "video",
        "music",
        "news",
        "mpnews",
        "msgmenu",
        "wxcard",
        "miniprogrampage-oa",
        "miniprogrampage-mp",
        "link-mp",
        "send_custom",
    ],
)
def test_customer_service_bodies(
    fake: FakeWeChat, send: Callable[[WeChatAPI], Any], msgtype: str, payload: dict[str, Any]
) -> None:
    assert send(api_for(fake)) == {"errcode": 0, "errmsg": "ok"}
    expected = {"touser": OPENID, "msgtype": msgtype, msgtype: payload}
    [received] = fake.messages
    assert json.dumps(received, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)


def test_the_body_is_utf8_json_without_escapes() -> None:
    sent: list[bytes] = []

    def transport(method: str, url: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        sent.append(json.dumps(body, ensure_ascii=False).encode())
        return token("T1") if "token" in url else {}

    scripted(transport).send_text(OPENID, "你好")  # {} : success without errcode
    assert (
        sent[-1]
        == f'{{"touser": "{OPENID}", "msgtype": "text", "text": {{"content": "你好"}}}}'.encode()
    )


def test_typing_indicator(fake: FakeWeChat) -> None:
    api = api_for(fake)
    api.typing(OPENID)
    api.typing(OPENID, on=False)
    assert fake.typing == [
        {"touser": OPENID, "command": "Typing"},
        {"touser": OPENID, "command": "CancelTyping"},
    ]


# -- one token for many processes ---------------------------------------------------------


def _calls_from_a_process(url: str, db: str, endpoint: str, calls: int) -> None:
    store = SQLiteStore(db)
    try:
        api = WeChatAPI(APPID, SECRET, store, base_url=url, token_endpoint=endpoint)
        for n in range(calls):
            api.typing(f"o{n}")
    finally:
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
    assert {r.errcode for r in fake.requests} == {0}


@pytest.mark.parametrize("endpoint", ["stable", "classic"])
def test_a_revoked_token_is_replaced_once_for_everyone(
    fake: FakeWeChat, tmp_path: Path, endpoint: str
) -> None:
    """Eight clients, each with its own connection to one SQLite file, all refused at once."""
    db = tmp_path / "tokens.db"
    stores = [SQLiteStore(db) for _ in range(8)]
    apis = [api_for(fake, store, token_endpoint=endpoint) for store in stores]
    apis[0].typing("oWarm")
    fake.revoke_tokens()
    start = threading.Barrier(len(apis))
    errors: list[Exception] = []

    def calls(api: WeChatAPI) -> None:
        start.wait()
        try:
            for n in range(20):
                api.typing(f"o{n}")
        except Exception as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=calls, args=(api,)) for api in apis]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in stores:
        store.close()
    assert errors == []
    assert fake.token_requests == 2
    assert len(fake.typing) == 1 + 8 * 20


# -- the fake itself: other test modules rely on these semantics --------------------------


def test_the_fake_tokens_behave_like_wechat() -> None:
    send = urllib_transport(timeout=2)
    credentials = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    with FakeWeChat(APPID, SECRET, old_token_grace=0.3) as fake:

        def classic() -> str:
            query = "&".join(f"{name}={value}" for name, value in credentials.items())
            return str(send("GET", f"{fake.url}{TOKEN_PATH}?{query}", None)["access_token"])

        def stable(force: bool) -> str:
            body = {**credentials, "force_refresh": force}
            return str(send("POST", fake.url + STABLE_TOKEN_PATH, body)["access_token"])

        def typing_with(token: str) -> int:
            url = f"{fake.url}/cgi-bin/message/custom/typing?access_token={token}"
            return int(send("POST", url, {"touser": OPENID, "command": "Typing"})["errcode"])

        first, second = classic(), classic()
        assert first != second
        assert (typing_with(first), typing_with(second)) == (0, 0)  # within the grace
        time.sleep(0.35)
        assert (typing_with(first), typing_with(second)) == (40001, 0)
        kept = stable(False)
        assert stable(False) == kept != second
        renewed = stable(True)
        assert (typing_with(kept), typing_with(renewed), typing_with(second)) == (40001, 0, 0)
        assert fake.token_requests == 5
