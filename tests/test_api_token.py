"""The access_token: one for every process, fetched under the store's lock, replaced once when
refused, on both clients."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api import (
    APIError,
    APIUnavailable,
    AsyncWeChatAPI,
    ErrorCode,
    MinuteQuotaReached,
    TokenRefreshTimeout,
    WeChatAPI,
)
from app.store import MemoryStore, SQLiteStore, Store
from tests.apikit import (  # noqa: F401 - fixtures
    APPID,
    BASE,
    CACHE_KEY,
    OPENID,
    SECRET,
    Caller,
    Script,
    api_for,
    fake_fixture,
    scripted,
    scripted_call_fixture,
    token,
)
from tests.fakewechat import SEND_PATH, STABLE_TOKEN_PATH, TOKEN_PATH, TYPING_PATH, FakeWeChat

# -- fetching and caching, through the transport seam -------------------------------------


def test_token_is_fetched_once_and_reused() -> None:
    script = Script(token("T1"))
    api = scripted(script)
    for _ in range(3):
        api.send_text(OPENID, "hi")
    assert script.paths == [STABLE_TOKEN_PATH, *[SEND_PATH] * 3]
    first = script.sent[0]
    assert (first.method, str(first.url)) == ("POST", BASE + STABLE_TOKEN_PATH)
    assert script.body(0) == {
        "grant_type": "client_credential",
        "appid": APPID,
        "secret": SECRET,
        "force_refresh": False,
    }
    assert str(script.sent[1].url) == BASE + SEND_PATH + "?access_token=T1"


def test_classic_endpoint_is_a_get_with_the_credentials_in_the_query() -> None:
    script = Script(token("T1"))
    scripted(script, token_endpoint="classic").typing(OPENID)
    assert (script.sent[0].method, str(script.sent[0].url), script.sent[0].content) == (
        "GET",
        f"{BASE}{TOKEN_PATH}?grant_type=client_credential&appid={APPID}&secret={SECRET}",
        b"",
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
        Script(token("T1", expires_in)), store=RecordingStore(), refresh_margin=margin
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
    script = Script(token("T1", 0.5), token("T2", 0.5))
    api = scripted(script, refresh_margin=0.2)
    assert api.access_token() == "T1"
    assert api.access_token() == "T1"
    time.sleep(0.35)  # past the refresh point (0.3 s), before expiry (0.5 s)
    assert api.access_token() == "T2"
    assert script.paths == [STABLE_TOKEN_PATH, STABLE_TOKEN_PATH]
    assert [script.body(n)["force_refresh"] for n in range(2)] == [False, False]


@pytest.mark.parametrize(
    "answer",
    [
        {"expires_in": 7200},
        {"access_token": "", "expires_in": 7200},
        {"access_token": "T", "expires_in": "soon"},
        {"access_token": "T", "expires_in": 0},
    ],
    ids=["no-token", "empty-token", "text-expiry", "zero-expiry"],
)
def test_an_unusable_token_answer_is_api_unavailable(answer: dict[str, Any]) -> None:
    with pytest.raises(APIUnavailable, match=f"^{STABLE_TOKEN_PATH} answered with"):
        scripted(Script(answer)).access_token()


def test_the_token_answer_needs_a_token_at_all() -> None:
    with pytest.raises(APIUnavailable) as info:
        scripted(Script({"expires_in": 7200})).access_token()
    assert info.value.message == f"{STABLE_TOKEN_PATH} answered without an access_token"


# -- replacing a refused token, on both clients -------------------------------------------


@pytest.mark.parametrize("errcode", [40001, 40014, 42001])
def test_refused_token_is_replaced_once_with_force_refresh(
    scripted_call: Callable[..., Caller], errcode: int
) -> None:
    script = Script(token("T1"), {"errcode": errcode, "errmsg": "refused"}, token("T2"))
    call = scripted_call(script)
    assert call("send_text", OPENID, "hi") == {"errcode": 0, "errmsg": "ok"}
    assert script.paths == [STABLE_TOKEN_PATH, SEND_PATH, STABLE_TOKEN_PATH, SEND_PATH]
    assert script.body(2)["force_refresh"] is True
    assert str(script.sent[3].url).endswith("?access_token=T2")
    assert json.loads(call.store.get(CACHE_KEY) or b"")["access_token"] == "T2"


def test_a_token_another_process_cached_is_used_not_replaced(
    scripted_call: Callable[..., Caller],
) -> None:
    store = MemoryStore()

    def refused_after_another_process_refreshed() -> dict[str, Any]:
        entry = {"access_token": "T2", "expires_at": time.time() + 7200}
        store.set(CACHE_KEY, json.dumps(entry).encode(), 6900)
        return {"errcode": 40001, "errmsg": "invalid credential"}

    script = Script(token("T1"), refused_after_another_process_refreshed)
    scripted_call(script, store=store)("send_text", OPENID, "hi")
    assert script.paths == [STABLE_TOKEN_PATH, SEND_PATH, SEND_PATH]
    assert str(script.sent[2].url).endswith("?access_token=T2")


def test_a_refused_token_is_dropped_from_the_cache_even_if_no_new_one_comes(
    scripted_call: Callable[..., Caller],
) -> None:
    store = MemoryStore()
    quota = {"errcode": 45011, "errmsg": "api minute-quota reach limit"}
    script = Script(token("T1"), {"errcode": 40001, "errmsg": "x"}, quota)
    with pytest.raises(MinuteQuotaReached) as info:
        scripted_call(script, store=store)("send_text", OPENID, "hi")
    assert (info.value.errcode, info.value.path) == (ErrorCode.MINUTE_QUOTA, STABLE_TOKEN_PATH)
    assert store.get(CACHE_KEY) is None


def test_a_malformed_cache_entry_is_replaced(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    store.set(CACHE_KEY, b"T0-raw-token-of-an-older-version", 60)
    assert scripted(Script(token("T1")), store=store).access_token() == "T1"
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
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_refresh_lock_held_elsewhere(refreshed_meanwhile: bool, mode: str) -> None:
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
        script = Script(token("T1"))
        call = Caller(mode, store, transport=script.transport, lock_wait=0.4)
        if refreshed_meanwhile:
            assert call("access_token") == "T9"
        else:
            with pytest.raises(TokenRefreshTimeout) as info:
                call("access_token")
            assert info.value.message == (
                f"another process held the access_token refresh lock of {APPID} for 0.4 s and"
                " cached no usable token"
            )
            assert isinstance(info.value, APIUnavailable)
        assert script.sent == []
    finally:
        release.set()
        holder.join()


# -- over HTTP ----------------------------------------------------------------------------


def test_refused_once_is_replaced_and_the_call_succeeds(fake: FakeWeChat) -> None:
    with api_for(fake) as api:
        api.send_text(OPENID, "first")
        fake.fail_next(SEND_PATH, ErrorCode.INVALID_CREDENTIAL)
        api.send_text(OPENID, "second")
    assert fake.token_requests == 2
    assert [m["text"]["content"] for m in fake.messages] == ["first", "second"]


@pytest.mark.parametrize("kill", ["revoke_tokens", "expire_tokens"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_token_killed_elsewhere_is_replaced(fake: FakeWeChat, kill: str, mode: str) -> None:
    call = Caller(mode, base_url=fake.url)
    call("send_text", OPENID, "before")
    getattr(fake, kill)()
    call("send_text", OPENID, "after")
    call.close()
    assert [r.errcode for r in fake.calls(SEND_PATH)] == [
        0,
        40001 if kill == "revoke_tokens" else 42001,
        0,
    ]
    assert fake.token_requests == 2


def test_refused_twice_is_an_api_error(fake: FakeWeChat) -> None:
    fake.fail_next(SEND_PATH, 42001, times=2, errmsg="access_token expired rid: 6543-21")
    with api_for(fake) as api, pytest.raises(APIError) as info:
        api.send_text(OPENID, "x")
    error = info.value
    assert (type(error), error.errcode, error.errmsg, error.path) == (
        APIError,
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


@pytest.mark.parametrize(("appid", "errcode"), [("wxWRONG", 40013), (APPID, 40001)])
@pytest.mark.parametrize("endpoint", ["stable", "classic"])
def test_wrong_credentials(fake: FakeWeChat, appid: str, errcode: int, endpoint: str) -> None:
    api = WeChatAPI(appid, "f" * 32, MemoryStore(), base_url=fake.url, token_endpoint=endpoint)
    with api, pytest.raises(APIError) as info:
        api.typing(OPENID)
    assert info.value.errcode == errcode
    assert "f" * 32 not in info.value.message
    assert fake.token_requests == 1  # a refused token fetch is not a refused token
    assert fake.typing == []


def test_sync_and_async_clients_share_one_token(fake: FakeWeChat) -> None:
    store = MemoryStore()

    async def concurrently() -> None:
        async with AsyncWeChatAPI(APPID, SECRET, store, base_url=fake.url) as api:
            await asyncio.gather(*(api.typing(f"o{n}") for n in range(20)))

    asyncio.run(concurrently())
    with api_for(fake, store) as api:
        api.typing(OPENID)
    assert fake.token_requests == 1
    assert len(fake.typing) == 21


# -- one token for many processes ---------------------------------------------------------


def _calls_from_a_process(url: str, db: str, endpoint: str, calls: int) -> None:
    store = SQLiteStore(db)
    try:
        with WeChatAPI(APPID, SECRET, store, base_url=url, token_endpoint=endpoint) as api:
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
        context.Process(target=_calls_from_a_process, args=(fake.url, db, endpoint, 50))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    assert fake.token_requests == 1
    assert len(fake.typing) == 200
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
    for api in apis:
        api.close()
    for store in stores:
        store.close()
    assert errors == []
    assert fake.token_requests == 2
    assert len(fake.typing) == 1 + 8 * 20


# -- the fake itself: other test modules rely on these semantics --------------------------


def test_the_fake_tokens_behave_like_wechat() -> None:
    credentials = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    with FakeWeChat(APPID, SECRET, old_token_grace=0.3) as fake, httpx.Client() as http:

        def classic() -> str:
            answer = http.get(fake.url + TOKEN_PATH, params=credentials).json()
            return str(answer["access_token"])

        def stable(force: bool) -> str:
            body = {**credentials, "force_refresh": force}
            return str(http.post(fake.url + STABLE_TOKEN_PATH, json=body).json()["access_token"])

        def typing_with(token: str) -> int:
            url = f"{fake.url}{TYPING_PATH}?access_token={token}"
            answer = http.post(url, json={"touser": OPENID, "command": "Typing"}).json()
            return int(answer["errcode"])

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
        assert fake.connections == 1  # the fake keeps connections alive, as WeChat does
