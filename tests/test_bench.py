"""The benchmarks' own instruments: they must send and count what their reports say."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench import proxy, servers, wire, wrk
from bench.account import service_env
from bench.report import percentile
from tests.servers import ROOT

REQUIRE_NGINX = os.environ.get("WX_TEST_REQUIRE_NGINX") == "1"


def _require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed"
        if REQUIRE_NGINX and "nginx" in tools:
            pytest.fail(reason)
        pytest.skip(reason)


def _request(body: bytes) -> bytes:
    head = f"POST /wx HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close"
    return head.encode() + b"\r\n\r\n" + body


def test_percentile_is_the_nearest_rank() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert percentile([float(n) for n in range(1, 101)], 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_wechat_sends_the_same_bytes_again_when_an_attempt_gets_no_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wire, "WECHAT_TIMEOUT", 0.05)  # the pause between attempts
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        received.append(head + await reader.readexactly(length))
        if len(received) > 1:  # the first attempt lapses: closed without an answer
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsuccess")
            await writer.drain()
        writer.close()

    async def play() -> list[wire.Exchange]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await wire.converse("127.0.0.1", port, _request(b"<xml>push</xml>"))

    attempts = asyncio.run(play())
    assert [a.outcome for a in attempts] == ["closed", "answer"]
    assert (attempts[1].status, attempts[1].body) == (200, b"success")
    assert received == [_request(b"<xml>push</xml>")] * 2


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[bytes]]]:
    """An HTTP server on loopback that answers "success" and keeps every body it got."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"success")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/wx", bodies
    finally:
        server.shutdown()
        server.server_close()


def test_wrk_sends_the_pushes_of_its_file_in_turn_and_says_when_it_ran_out(
    recorder: tuple[str, list[bytes]],
) -> None:
    _require("wrk")
    url, bodies = recorder
    pushes = [f"<xml>push {n}</xml>".encode() for n in range(3)]
    result = wrk.run(url, [_request(body) for body in pushes], connections=1, seconds=1)
    assert result.requests >= 3 and not result.errors
    # In turn, from wherever wrk started: it asks for one request up front that it never sends.
    first = pushes.index(bodies[0])
    assert bodies == [pushes[(first + n) % len(pushes)] for n in range(len(bodies))]
    assert result.wrapped >= 1


def test_the_deploy_kit_runs_on_loopback_for_the_benchmark(tmp_path: Path) -> None:
    _require("nginx", "openssl")
    main = proxy.write_config(ROOT / "deploy", tmp_path, upstream="127.0.0.1:1").main
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    installed = [main, *(tmp_path / "conf.d").glob("*.conf")]
    lines = [line.split("#")[0] for conf in installed for line in conf.read_text().splitlines()]
    leftovers = ("/var/", "/run/", "/etc/letsencrypt", "127.0.0.1:8000", "[::]")
    assert not [line for line in lines if any(path in line for path in leftovers)]


def test_context_switches_count_every_thread_of_the_workers() -> None:
    """A worker thread other than the main one that sleeps 200 times switches at least that
    often, and the count sees it: it reads every thread's /proc status, not the main one's.
    Another thread that ends meanwhile, after 1,000 switches of its own, takes nothing of
    that count with it."""
    master = servers.Server("127.0.0.1:0", os.getpid())
    script = (
        "import sys, threading, time\n"
        "def ending():\n"
        "    for _ in range(1000):\n"
        "        time.sleep(0.0002)\n"
        "    print('ready', flush=True)\n"
        "    sys.stdin.readline()\n"
        "def other():\n"
        "    sys.stdin.readline()\n"
        "    for _ in range(200):\n"
        "        time.sleep(0.0005)\n"
        "    print('slept', flush=True)\n"
        "    sys.stdin.readline()\n"
        "first = threading.Thread(target=ending)\n"
        "first.start()\n"
        "first.join()\n"
        "threading.Thread(target=other).start()\n"
    )
    command = [sys.executable, "-c", script]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as worker:
        assert worker.stdin is not None and worker.stdout is not None
        assert worker.stdout.readline() == "ready\n"
        before = master.context_switches()
        worker.stdin.write("end\n")  # the first thread ends, and the other starts
        worker.stdin.flush()
        deadline = time.monotonic() + 10
        while set(master.context_switches()) == set(before):  # until the other starts
            assert time.monotonic() < deadline
            time.sleep(0.01)
        worker.stdin.write("go\n")
        worker.stdin.flush()
        assert worker.stdout.readline() == "slept\n"
        assert master.switches_since(before) >= 200
        worker.stdin.write("end\n")
        worker.stdin.flush()


def test_log_problems_counts_a_worker_booted_again_but_not_one_retired_by_design(
    tmp_path: Path,
) -> None:
    log = tmp_path / "server.log"
    boots = [f"[INFO] Booting worker with pid: {pid}" for pid in (11, 12)]
    retired = ["[INFO] Autorestarting worker after current request.", boots[0]]
    log.write_text("\n".join(boots + retired) + "\n")
    assert servers.log_problems(log, workers=2) == {}
    log.write_text("\n".join(boots + retired + [boots[1]]) + "\n")
    assert servers.log_problems(log, workers=2) == {"workers booted": 1}


def test_the_inline_device_answers_a_push_without_a_handler_thread(tmp_path: Path) -> None:
    """bench/inline_app.py prices the crossing to a handler thread by leaving it out: its
    service answers the echo as the service does, and no handler thread ever starts."""
    script = (
        "import threading\n"
        "from bench.inline_app import app\n"
        "from bench.pushes import builder\n"
        "wechat = builder()\n"
        "query, body = wechat.build(wechat.complete({'MsgType': 'text', 'Content': 'hi'}))\n"
        "answer = app.test_client().post('/wx', query_string=query, data=body)\n"
        "print(wechat.read(answer.status_code, answer.data).reply.content)\n"
        "print(sorted({t.name.split('_')[0] for t in threading.enumerate()}))\n"
    )
    env = {
        **os.environ,
        **service_env(tmp_path),
        "WX_DOTENV": "/nonexistent/.env",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    content, threads = result.stdout.splitlines()
    assert content == "hi"
    assert "wx-handler" not in threads
