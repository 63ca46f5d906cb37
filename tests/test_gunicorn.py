"""A real ``gunicorn wsgi:app`` on loopback, configured from the environment alone."""

from __future__ import annotations

import secrets
import socket
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.testing import PushBuilder
from app.wechat.codec import BodyFormat, parse_xml
from app.wechat.envelope import Mode
from app.wechat.replies import TextReply
from app.wechat.signature import sign
from app.wechat.timing import LEASE_TTL
from config import load_settings
from tests.conftest import AES_KEY, APPID, TOKEN
from tests.peer import WeChatPeer, json_body, text_fields, xml_body
from tests.servers import NO_ANSWER, gunicorn, private_redis, redis_server_available
from tests.servers import request as http_request


def service_env(tmp_path: Path, store_url: str, **extra: str) -> dict[str, str]:
    return {
        "WX_TOKEN": TOKEN,
        "WX_APPID": APPID,
        "WX_AES_KEY": AES_KEY,
        "WX_HANDLERS": "tests.service_handlers",
        "WX_DEADLINE": "1",
        "WX_STORE_URL": store_url,
        "WX_TEST_CALLS": str(tmp_path / "calls.log"),
        **extra,
    }


def builder(env: dict[str, str], **options: object) -> PushBuilder:
    return PushBuilder(load_settings(env, dotenv=False), **options)  # type: ignore[arg-type]


def handler_runs(tmp_path: Path) -> Counter[str]:
    path = tmp_path / "calls.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(line.split(" ", 1)[1] for line in lines)


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return service_env(tmp_path, f"sqlite:///{tmp_path}/ledger.db")


@pytest.fixture
def server(sqlite_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with gunicorn(sqlite_env, workers=2, log=tmp_path / "gunicorn.log") as url:
        yield url


def test_handshake(server: str) -> None:
    timestamp, nonce = str(int(time.time())), "42"
    query = {
        "signature": sign(TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": "hello-echo",
    }
    assert http_request("GET", server + "/wx", query) == (200, b"hello-echo")
    assert http_request("GET", server + "/wx", {**query, "signature": "0" * 40})[0] == 403


@pytest.mark.parametrize("mode", list(Mode))
@pytest.mark.parametrize("body_format", list(BodyFormat))
def test_every_mode_and_format(
    server: str, sqlite_env: dict[str, str], mode: Mode, body_format: BodyFormat
) -> None:
    wechat = builder(sqlite_env, mode=mode, body_format=body_format)
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "你好"}))
    result = wechat.read(*http_request("POST", server + "/wx", query, body))
    if body_format is BodyFormat.JSON:  # a Mini Program: content goes by the API
        assert result.body == b"success"
    else:
        assert result.reply == TextReply("echo: 你好")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/wx", b"<xml><a>", 400),
        (
            "POST",
            "/wx",
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml>&e;</xml>',
            400,
        ),
        ("POST", "/wx", b"<xml>" + b"x" * 70000 + b"</xml>", 413),
        ("GET", "/elsewhere", b"", 404),
        ("PUT", "/wx", b"", 405),
    ],
)
def test_hostile_requests(server: str, method: str, path: str, body: bytes, status: int) -> None:
    timestamp, nonce = str(int(time.time())), "42"
    query = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    assert http_request(method, server + path, query, body)[0] == status


def test_a_slow_handler_is_answered_on_the_retry(
    server: str, sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    wechat = builder(sqlite_env, user="oSlowGunicorn")
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "sleep 1.6"}))
    started = time.monotonic()
    first = http_request("POST", server + "/wx", query, body)
    took = time.monotonic() - started
    second = wechat.read(*http_request("POST", server + "/wx", query, body))
    assert first == (NO_ANSWER, b"")
    assert took < 2.0
    assert second.reply == TextReply("slept 1.6")
    assert sum(n for key, n in handler_runs(tmp_path).items() if "oSlowGunicorn" in key) == 1


def test_a_push_whose_worker_died_is_taken_over_by_a_retry(
    server: str, sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    wechat = builder(sqlite_env, user="oOrphan")
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "die once"}))
    assert http_request("POST", server + "/wx", query, body) == (NO_ANSWER, b"")
    time.sleep(LEASE_TTL + 0.5)  # WeChat's next attempt comes about 5 s later
    retry = wechat.read(*http_request("POST", server + "/wx", query, body))
    assert retry.reply == TextReply("answered after a worker died")
    again = http_request("POST", server + "/wx", query, body)
    assert again == (200, retry.body)
    runs = [line.split() for line in (tmp_path / "calls.log").read_text().splitlines()]
    assert [key for _, key in runs if "oOrphan" in key] == [runs[0][1]] * 2
    assert "stopped; attempt 2 runs the handler again" in (tmp_path / "gunicorn.log").read_text()


def _retry_storm(url: str, wechat: PushBuilder, pushes: int) -> list[list[tuple[int, bytes]]]:
    """Send every push three times at once, all pushes concurrently; answers per push."""
    built = [
        wechat.build(
            wechat.complete(
                {"MsgType": "text", "Content": f"storm {n}", "FromUserName": f"oStorm{n}"}
            )
        )
        for n in range(pushes)
    ]
    with ThreadPoolExecutor(max_workers=24) as pool:
        futures = [
            [pool.submit(http_request, "POST", url + "/wx", query, body) for _ in range(3)]
            for query, body in built
        ]
        return [[future.result() for future in attempts] for attempts in futures]


def _assert_once_and_identical(answers: list[list[tuple[int, bytes]]], runs: Counter[str]) -> None:
    assert len(runs) == len(answers)
    assert set(runs.values()) == {1}
    for attempts in answers:
        assert {status for status, _ in attempts} == {200}
        assert len({body for _, body in attempts}) == 1


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_concurrent_retries_across_workers_run_each_handler_once(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        store_url = f"sqlite:///{tmp_path}/ledger.db"
    else:
        redis_url = request.getfixturevalue("redis_url")
        store_url = f"{redis_url}?prefix=test-{secrets.token_hex(4)}:"
    env = service_env(tmp_path, store_url)
    with gunicorn(env, workers=4, log=tmp_path / "gunicorn.log") as url:
        if backend == "redis" and b"DEGRADED" in (tmp_path / "gunicorn.log").read_bytes():
            pytest.fail("the Redis store is not reachable")
        answers = _retry_storm(url, builder(env), pushes=50)
    log = (tmp_path / "gunicorn.log").read_text()
    assert "DEGRADED" not in log
    _assert_once_and_identical(answers, handler_runs(tmp_path))


@pytest.mark.skipif(not redis_server_available(), reason="redis-server is not installed")
def test_redis_stopped_mid_run_degrades_and_keeps_answering(tmp_path: Path) -> None:
    with private_redis() as (redis_url, redis_process):
        env = service_env(tmp_path, redis_url)
        wechat = builder(env)
        with gunicorn(env, workers=2, log=tmp_path / "gunicorn.log") as url:
            before = _retry_storm(url, wechat, pushes=10)
            redis_process.terminate()
            redis_process.wait(timeout=10)
            after = [
                wechat.read(
                    *http_request(
                        "POST",
                        url + "/wx",
                        *wechat.build(
                            wechat.complete({"MsgType": "text", "Content": f"after {n}"})
                        ),
                    )
                )
                for n in range(10)
            ]
    assert all(status == 200 for attempts in before for status, _ in attempts)
    assert [r.reply for r in after] == [TextReply(f"echo: after {n}") for n in range(10)]
    assert "DEGRADED" in (tmp_path / "gunicorn.log").read_text()


@pytest.mark.skipif(not redis_server_available(), reason="redis-server is not installed")
def test_with_redis_gone_retries_on_other_workers_still_run_each_handler_once(
    tmp_path: Path,
) -> None:
    # The fallback was per-process memory: a retry landing on another worker ran the handler
    # again (54 % of pushes in the drill). Now the host's workers share a fallback file.
    with private_redis() as (redis_url, redis_process):
        env = service_env(tmp_path, f"{redis_url}?socket_timeout=0.3&socket_connect_timeout=0.3")
        with gunicorn(env, workers=4, log=tmp_path / "gunicorn.log") as url:
            redis_process.kill()
            redis_process.wait(timeout=10)
            answers = _retry_storm(url, builder(env, user=f"oGone{secrets.token_hex(4)}"), 30)
    assert "DEGRADED to the host's fallback file" in (tmp_path / "gunicorn.log").read_text()
    _assert_once_and_identical(answers, handler_runs(tmp_path))


@pytest.mark.parametrize("mode", ["plaintext", "compatible", "safe"])
@pytest.mark.parametrize("body_format", ["xml", "json"])
def test_pushes_made_by_an_independent_implementation(
    server: str, mode: str, body_format: str
) -> None:
    """wechatpy signs and encrypts the push, and verifies and decrypts the answer."""
    peer = WeChatPeer(TOKEN, AES_KEY, APPID)
    fields = text_fields(
        "独立 ]]> check", create_time=int(time.time()), msg_id=secrets.randbits(60)
    )
    body = xml_body(fields) if body_format == "xml" else json_body(fields)
    query, wire = peer.push(
        body, mode=mode, body_format=body_format, timestamp=int(time.time()), nonce="20261125"
    )
    status, answer = http_request("POST", server + "/wx", query, wire)
    assert status == 200
    plain = peer.open_reply(answer, body_format=body_format)
    if body_format == "json":  # a Mini Program: content goes by the API, never passively
        assert plain == b"success"
        return
    reply = parse_xml(plain)
    assert reply["MsgType"] == "text"
    assert reply["Content"] == "echo: 独立 ]]> check"
    assert reply["ToUserName"] == fields["FromUserName"]
    assert (b"<Encrypt>" in answer) is (mode != "plaintext")


def _raw_post(server: str, target: str, framed_body: bytes) -> bytes:
    """Send a chunked POST as given, byte for byte, and return the whole response."""
    host, port = server.removeprefix("http://").split(":")
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/xml\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        try:
            sock.sendall(framed_body)
        except OSError:  # the server may answer and close before the body is all sent
            pass
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    return response


def _chunked(body: bytes, size: int = 65536) -> bytes:
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_a_chunked_body_over_the_limit_is_refused_not_cut(
    server: str, sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    # Werkzeug's limited stream stopped at WX_MAX_BODY and the cut body, a valid push followed
    # by 5 MB of spaces, was answered 200 with its reply.
    wechat = builder(sqlite_env, user="oChunked")
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "cut me"}))
    target = "/wx?" + urllib.parse.urlencode(query)
    response = _raw_post(server, target, _chunked(body + b" " * 5_000_000))
    assert response.startswith(b"HTTP/1.1 413 ")
    within = _raw_post(server, target, _chunked(body + b" " * 1000))
    assert within.startswith(b"HTTP/1.1 200 ")
    assert sum(n for key, n in handler_runs(tmp_path).items() if "oChunked" in key) == 1


@pytest.mark.parametrize("size", [b"-1", b"0x10", b"+fe", b"zz"])
def test_malformed_chunk_sizes_are_400(server: str, size: bytes, tmp_path: Path) -> None:
    timestamp, nonce = str(int(time.time())), "42"
    query = {"signature": sign(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}
    target = "/wx?" + urllib.parse.urlencode(query)
    response = _raw_post(server, target, size + b"\r\n<xml/>\r\n0\r\n\r\n")
    assert response.split(b"\r\n", 1)[0] in (
        b"HTTP/1.1 400 Bad Request",
        b"HTTP/1.1 400 BAD REQUEST",
    )
    log = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in log and "internal error" not in log


def test_the_log_has_one_line_per_push_and_never_calls_a_lapse_503(
    server: str, sqlite_env: dict[str, str], tmp_path: Path
) -> None:
    # gunicorn's access log added a second line per push, and logged a lapse (a connection
    # WeChat saw closed) as a 503.
    wechat = builder(sqlite_env, user="oOneLine")
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "sleep 1.3"}))
    assert http_request("POST", server + "/wx", query, body) == (NO_ANSWER, b"")
    time.sleep(0.5)
    lines = (tmp_path / "gunicorn.log").read_text().splitlines()
    assert [line for line in lines if '"POST /wx"' in line or " 503 " in line] == []
    assert len([line for line in lines if " -> lapsed in " in line]) == 1
