"""Real servers on loopback for the tests that need them: gunicorn and a private Redis."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What a closed connection with no HTTP answer (a lapsed attempt) reads as.
NO_ANSWER = 0


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait until something listens on ``port``; fail early if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


@contextmanager
def gunicorn(
    env: Mapping[str, str], *, workers: int = 2, threads: int = 8, log: Path | None = None
) -> Iterator[str]:
    """Run ``gunicorn wsgi:app`` from the repository with ``env`` alone; yield its base URL.

    With a ``log``, the server's temporary files (the store's fallback file) go beside it, so
    a test leaves nothing in the machine's /tmp.
    """
    port = free_port()
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "WX_DOTENV": "/nonexistent/.env",
        **({"TMPDIR": str(log.parent)} if log else {}),
        **env,
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "gunicorn.conf.py",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "wsgi:app",
    ]
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(command, cwd=ROOT, env=environ, stdout=output, stderr=output)
    try:
        wait_for_port(port, process, timeout=20)
        url = f"http://127.0.0.1:{port}"
        # The master listens before a worker has booted: wait until one answers.
        while request("GET", url + "/", timeout=20)[0] == NO_ANSWER:
            time.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            output.close()  # type: ignore[union-attr]


def request(
    method: str,
    url: str,
    query: Mapping[str, str] | None = None,
    body: bytes = b"",
    *,
    timeout: float = 30,
) -> tuple[int, bytes]:
    """One HTTP request on a fresh connection, as WeChat makes them.

    :return: status and body; ``NO_ANSWER`` and b"" when the server closed the connection
        without answering.
    """
    parts = urllib.parse.urlsplit(url)
    target = parts.path + ("?" + urllib.parse.urlencode(query) if query else "")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, target, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        return NO_ANSWER, b""
    finally:
        connection.close()


def redis_server_available() -> bool:
    """Whether this machine can start a private redis-server."""
    return shutil.which("redis-server") is not None


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """Start a redis-server on loopback ``port`` that keeps nothing on disk.

    Started again on the same port after it was killed, it comes back empty, as a Redis without
    persistence does under a supervisor.
    """
    return subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@contextmanager
def private_redis() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A redis-server of this test's own on a free loopback port, so it can be stopped."""
    port = free_port()
    process = start_redis(port)
    try:
        wait_for_port(port, process, timeout=10)
        yield f"redis://127.0.0.1:{port}/0", process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=10)


def run_cli(
    *args: str, env: dict[str, str], cwd: Path = ROOT, dotenv: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m app``; ``dotenv`` lets it find its settings file itself, as users do."""
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
        **({} if dotenv else {"WX_DOTENV": "/nonexistent/.env"}),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
