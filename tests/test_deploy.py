"""The deploy kit in a real nginx in front of a real gunicorn: what reaches WeChat, what reaches
the logs, what slow clients get, and a reload under load."""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import pytest

from app.testing import PushBuilder
from app.wechat.replies import TextReply
from config import load_settings
from tests.conftest import AES_KEY, APPID, TOKEN
from tests.nginxkit import DEPLOY, host_install, nginx_t, require_nginx
from tests.servers import NO_ANSWER, ROOT, free_port, gunicorn, request, run_cli, wait_for_port

#: Query parameters that must never reach a log: each one signs or names the push.
SIGNED = ("signature", "nonce", "openid", "msg_signature")


def test_nginx_config_is_valid(tmp_path: Path) -> None:
    require_nginx()
    main = host_install(tmp_path, (free_port(), free_port()))
    result = nginx_t(main)
    assert result.returncode == 0, result.stderr


def test_the_http_only_first_step_is_valid_without_a_certificate(tmp_path: Path) -> None:
    require_nginx()
    main = host_install(tmp_path, (free_port(), free_port()), https=False)
    result = nginx_t(main)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "cert.pem").exists()


class Site(NamedTuple):
    """The kit serving: nginx's base URLs, a WeChat that signs for it, where the logs are."""

    http: str
    https: str
    wechat: PushBuilder
    logs: Path

    def push(self, content: str) -> tuple[dict[str, str], bytes]:
        return self.wechat.build(self.wechat.complete({"MsgType": "text", "Content": content}))

    def gunicorn_master(self) -> int:
        return int((self.logs / "gunicorn.pid").read_text())


@pytest.fixture
def behind_nginx(tmp_path: Path) -> Iterator[Site]:
    """gunicorn behind the kit's nginx, both logging into tmp_path."""
    require_nginx()
    env = {
        "WX_TOKEN": TOKEN,
        "WX_APPID": APPID,
        "WX_AES_KEY": AES_KEY,
        "WX_HANDLERS": "tests.service_handlers",
        "WX_DEADLINE": "1",
        "WX_STORE_URL": f"sqlite:///{tmp_path}/ledger.db",
        "GUNICORN_CMD_ARGS": f"--pid {tmp_path}/gunicorn.pid",
    }
    http_port, https_port = free_port(), free_port()
    with gunicorn(env, workers=2, log=tmp_path / "gunicorn.log") as upstream:
        main = host_install(
            tmp_path, (http_port, https_port), upstream=upstream.removeprefix("http://")
        )
        nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(main)])
        try:
            wait_for_port(http_port, nginx, timeout=10)
            yield Site(
                f"http://127.0.0.1:{http_port}",
                f"https://127.0.0.1:{https_port}",
                PushBuilder(load_settings(env, dotenv=False)),
                tmp_path,
            )
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)


def _eventually(condition: Callable[[], object], what: str, timeout: float = 30) -> None:
    """Wait until condition() is true; fail saying what never happened."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def test_pushes_pass_and_a_lapse_reaches_wechat_as_no_answer(behind_nginx: Site) -> None:
    site = behind_nginx
    query, body = site.push("through nginx")
    assert site.wechat.read(*request("POST", site.http + "/wx", query, body)).reply == TextReply(
        "echo: through nginx"
    )
    slow_query, slow_body = site.push("sleep 1.5")
    assert request("POST", site.http + "/wx", slow_query, slow_body) == (NO_ANSWER, b"")
    retry = site.wechat.read(*request("POST", site.http + "/wx", slow_query, slow_body))
    assert retry.reply == TextReply("slept 1.5")
    assert request("GET", site.http + "/elsewhere")[0] == 301


def test_no_log_holds_the_signed_query(behind_nginx: Site) -> None:
    site = behind_nginx
    query, body = site.push("through nginx")
    assert request("POST", site.http + "/wx", query, body)[0] == 200
    # A lapse is what nginx reports as an upstream error, with the request line.
    slow_query, slow_body = site.push("sleep 1.5")
    assert request("POST", site.http + "/wx", slow_query, slow_body)[0] == NO_ANSWER
    assert {"openid", "msg_signature"} <= set(query)

    access = site.logs / "wx-push.access.log"
    _eventually(lambda: access.read_text().count('"POST /wx"') == 2, "both pushes logged")
    assert re.search(r'"POST /wx" 200 \d+ [\d.]+ upstream=200 ', access.read_text())
    assert re.search(r'"POST /wx" 444 0 [\d.]+ upstream=502 ', access.read_text())
    logs = {path.name: path.read_text() for path in site.logs.glob("*.log")}
    assert {"wx-push.access.log", "wx-push.error.log", "error.log", "gunicorn.log"} <= set(logs)
    for name, text in logs.items():
        for push in (query, slow_query):
            for parameter in SIGNED:
                assert push[parameter] not in text, f"{name} holds the push's {parameter}"


def test_the_acme_challenge_is_served_on_port_80_not_redirected(behind_nginx: Site) -> None:
    site = behind_nginx
    challenge = site.logs / "acme" / ".well-known" / "acme-challenge"
    challenge.mkdir(parents=True)
    (challenge / "tOkEn-42").write_text("tOkEn-42.thumbprint")
    assert request("GET", site.http + "/.well-known/acme-challenge/tOkEn-42") == (
        200,
        b"tOkEn-42.thumbprint",
    )
    assert request("GET", site.http + "/.well-known/other")[0] == 301


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _closed_unanswered(connections: list[socket.socket], feed: bytes, timeout: float) -> bool:
    """Feed every connection a byte a second until the server closes them all.

    :return: whether all were closed within ``timeout`` without a byte of answer.
    """
    open_ = set(connections)
    with selectors.DefaultSelector() as waiting:
        for connection in connections:
            waiting.register(connection, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        sent = 0
        while open_ and time.monotonic() < deadline:
            for key, _ in waiting.select(timeout=1):
                connection = next(c for c in open_ if c.fileno() == key.fd)
                try:
                    answer = connection.recv(1024)
                except ConnectionResetError:
                    answer = b""
                assert answer == b"", f"answered {answer[:60]!r} instead of closing"
                waiting.unregister(connection)
                open_.discard(connection)
            for connection in open_:
                try:
                    connection.sendall(feed[sent % len(feed) : sent % len(feed) + 1])
                except (BrokenPipeError, ConnectionResetError):
                    pass  # closed; the next select sees it
            sent += 1
    return not open_


def test_trickled_headers_are_cut_off_and_pushes_still_answered(behind_nginx: Site) -> None:
    site = behind_nginx
    tricklers = [socket.create_connection(("127.0.0.1", _port(site.http))) for _ in range(200)]
    try:
        for connection in tricklers:
            connection.sendall(b"POST /wx HTTP/1.1\r\nHost: wx.example.com\r\n")
        query, body = site.push("past the tricklers")
        answer = site.wechat.read(*request("POST", site.http + "/wx", query, body))
        assert answer.reply == TextReply("echo: past the tricklers")
        # nginx's default would keep them 60 s, however slowly they trickle.
        assert _closed_unanswered(tricklers, b"X-Trickle: 1\r\n", timeout=30)
    finally:
        for connection in tricklers:
            connection.close()


def test_connections_over_the_limit_are_closed_unanswered(behind_nginx: Site) -> None:
    site = behind_nginx
    limit = re.search(
        r"limit_conn wx_push_conn (\d+);", (DEPLOY / "wx-push-proxy.conf").read_text()
    )
    assert limit is not None
    # Requests whose body trickles in are under way: each holds one of the address's slots.
    holders = [
        socket.create_connection(("127.0.0.1", _port(site.http)))
        for _ in range(int(limit.group(1)))
    ]
    refused: list[int] = []

    def over_the_limit() -> bool:
        for connection in holders:
            connection.sendall(b"<")  # a body byte, well within client_body_timeout
        query, body = site.push("one too many")
        refused.append(request("POST", site.http + "/wx", query, body, timeout=10)[0])
        return refused[-1] == NO_ANSWER

    try:
        for connection in holders:
            connection.sendall(
                b"POST /wx HTTP/1.1\r\nHost: wx.example.com\r\nContent-Length: 4096\r\n\r\n"
            )
        _eventually(over_the_limit, "a push over limit_conn closed without an answer")
    finally:
        for connection in holders:
            connection.close()
    query, body = site.push("room again")
    _eventually(
        lambda: request("POST", site.http + "/wx", query, body)[0] == 200,
        "pushes answered once the held connections are gone",
    )


def _workers(master: int) -> set[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text()
    return {int(pid) for pid in children.split()}


def test_a_reload_under_a_stream_of_pushes_fails_none(behind_nginx: Site) -> None:
    """systemctl reload wx-push is SIGHUP to gunicorn: new workers, old ones finish and go."""
    site = behind_nginx
    master = site.gunicorn_master()
    old = _workers(master)
    answers: list[object] = []
    done = threading.Event()

    def stream() -> None:
        while not done.is_set():
            query, body = site.push("during a reload")
            status, body = request("POST", site.http + "/wx", query, body)
            answers.append(site.wechat.read(status, body).reply if status == 200 else status)

    with ThreadPoolExecutor(4) as pool:
        streams = [pool.submit(stream) for _ in range(4)]
        try:
            _eventually(lambda: len(answers) >= 20, "pushes answered before the reload")
            os.kill(master, signal.SIGHUP)
            _eventually(lambda: not _workers(master) & old, "the old workers gone", timeout=60)
            after = len(answers)
            _eventually(lambda: len(answers) >= after + 20, "pushes answered by the new workers")
        finally:
            done.set()
        for finished in streams:
            finished.result()
    assert _workers(master) and len(answers) >= 40
    failures = [answer for answer in answers if answer != TextReply("echo: during a reload")]
    assert failures == []


@pytest.mark.parametrize(
    ("scheme", "says"),
    [
        ("https", "the https certificate is not trusted (self-signed certificate)"),
        ("http", "400: an http request reached an https port"),
    ],
)
def test_check_explains_https_mistakes(behind_nginx: Site, scheme: str, says: str) -> None:
    url = behind_nginx.https.replace("https:", f"{scheme}:") + "/wx"
    result = run_cli("check", "--url", url, env={"WX_TOKEN": TOKEN})
    assert result.returncode == 1, result.stdout
    assert says in result.stdout
    assert "cause:" in result.stdout and "fix:" in result.stdout


def test_a_worker_that_cannot_boot_stops_gunicorn_with_its_own_error(tmp_path: Path) -> None:
    (tmp_path / "broken_handlers.py").write_text("def broken(:\n")
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
        + ["--bind", f"127.0.0.1:{free_port()}", "--workers", "1", "wsgi:app"],
        cwd=ROOT,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "PYTHONPATH": str(tmp_path),
            "WX_DOTENV": "/nonexistent/.env",
            "WX_TOKEN": TOKEN,
            "WX_HANDLERS": "broken_handlers",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    assert output.count("error: Could not import 'broken_handlers'") == 1, output
    assert "Reason: Worker failed to boot." in output
    # worker_exit runs for a worker that never booted too: it must find nothing to close.
    assert "Traceback" not in output and "Exception during worker exit" not in output, output


def test_systemd_unit_runs_gunicorn_from_the_virtualenv() -> None:
    unit = (DEPLOY / "wx-push.service").read_text()
    for line in (
        "ExecStart=/srv/wx-push/.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "EnvironmentFile=/srv/wx-push/.env",
        "WorkingDirectory=/srv/wx-push",
        # ProtectSystem=strict leaves writable only what exists when the service starts.
        "ExecStartPre=+/usr/bin/install -d -o wxpush -g wxpush -m 0750 /srv/wx-push/instance",
        "ReadWritePaths=/srv/wx-push/instance",
        "Restart=on-failure",
        "NoNewPrivileges=true",
    ):
        assert line in unit
    if shutil.which("systemd-analyze"):
        result = subprocess.run(
            ["systemd-analyze", "verify", str(DEPLOY / "wx-push.service")],
            capture_output=True,
            text=True,
        )
        assert "Unknown key" not in result.stderr and "Unknown section" not in result.stderr
