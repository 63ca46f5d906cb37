"""Slow clients and hung handlers: do ordinary pushes still get through?

Three runs, each with ordinary pushes (a handler that answers at once) sent 5 a second for
10 s, as WeChat sends them, while something holds the server:

* trickle: 200 connections straight to gunicorn send a push one byte a second, half of them
  in the headers, half in the body;
* hung: 200 pushes whose handler blocks for good (WeChat retries them as usual), then, once
  WeChat has given up on them, 10 more ordinary pushes: has the service recovered?
* nginx: 2,000 such trickling connections (from 10 loopback addresses, 200 each, none of them
  the ordinary pushes') to nginx running a deploy kit (deploy/ by default; ``--nginx-kit``
  for another, bench/proxy.py installs it) in front of gunicorn, over TLS as WeChat connects.

Printed per run: the ordinary pushes answered with a reply and on which attempt, their latency
(first attempt to reply), and what became of the tricklers.

    .venv/bin/python bench/slowclients.py [--tricklers 200] [--hung 200] [--seconds 10]
        [--nginx-kit deploy] [--nginx-tricklers 2000] [--server-args ...] [--env ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import ssl
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import crowd, proxy, report, servers  # noqa: E402
from bench import options as shared  # noqa: E402
from bench.account import service_env  # noqa: E402
from bench.pushes import raw_request, text_push, user  # noqa: E402
from tests.servers import ROOT  # noqa: E402

#: Users of the ordinary pushes are numbered from here, apart from the others'.
ORDINARY_USERS = 1_000_000
#: Users of the ordinary pushes sent after the hung ones, apart from all others.
LATER_USERS = 2_000_000
#: Trickling connections per source address: under the deploy kit's 256 per address.
PER_SOURCE = 200


async def trickle(
    host: str,
    slow: Trickled,
    *,
    opened: asyncio.Queue[None],
    stop: asyncio.Event,
    tls: ssl.SSLContext | None,
) -> str:
    """Send a push one byte a second (the body only, when it says so) until ``stop`` is set.

    :param opened: gets an item once the connection is open (or failed to open).
    :return: how it ended: "held" (still open at the end), "refused", or "cut after N s"
        (the server closed the connection or answered, N rounded to 5 s).
    """
    address, port = host.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        reader, writer = await asyncio.open_connection(
            address, int(port), ssl=tls, local_addr=(slow.source, 0)
        )
    except OSError as e:
        return f"refused ({type(e).__name__}) after {5 * round((loop.time() - started) / 5)} s"
    finally:
        opened.put_nowait(None)
    head, blank, rest = slow.raw.partition(b"\r\n\r\n")
    at_once, slowly = (head + blank, rest) if slow.body else (b"", slow.raw)
    closed = asyncio.ensure_future(reader.read(1))  # done when the server answers or closes
    stopping = asyncio.ensure_future(stop.wait())
    try:
        writer.write(at_once)
        for byte in slowly:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.wait({closed, stopping}, timeout=1.0, return_when="FIRST_COMPLETED")
            if closed.done():
                break
            if stopping.done():
                return "held"
    except (OSError, ssl.SSLError):
        pass
    finally:
        closed.cancel()
        stopping.cancel()
        writer.transport.abort()
    return f"cut after {5 * round((loop.time() - started) / 5)} s"


def ordinary(host: str, options: argparse.Namespace, start: float) -> list[crowd.Push]:
    """Quick pushes, ``options.rate`` a second from ``start`` to ``options.seconds``."""
    count = int((options.seconds - start) * options.rate)
    return [
        crowd.Push(
            "ordinary",
            start + n / options.rate,
            raw_request(*text_push(f"quick {n}", user(ORDINARY_USERS + n)), host),
        )
        for n in range(count)
    ]


async def under_pressure(
    host: str,
    pushes: list[crowd.Push],
    trickled: list[Trickled],
    *,
    tls: ssl.SSLContext | None = None,
) -> tuple[list[crowd.Conversation], Counter[str]]:
    """Play ``pushes`` while ``trickled`` requests trickle; stop trickling when they are done.

    The pushes start once every trickler has connected (a minute at most): the figures are
    those of a server holding slow connections, not of one (or of this client) busy opening
    them.
    """
    stop = asyncio.Event()
    opened: asyncio.Queue[None] = asyncio.Queue()
    tricklers = [
        asyncio.create_task(trickle(host, slow, opened=opened, stop=stop, tls=tls))
        for slow in trickled
    ]
    loop = asyncio.get_running_loop()
    started = loop.time()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(60):
            for _ in tricklers:
                await opened.get()
    if tricklers:
        print(f"  {len(tricklers)} tricklers connecting took {loop.time() - started:.1f} s")
    try:
        conversations = await crowd.gather(host, pushes, tls=tls)
    finally:
        stop.set()
    endings = Counter(await asyncio.gather(*tricklers))
    return conversations, endings


def show(label: str, conversations: list[crowd.Conversation], endings: Counter[str]) -> None:
    for kind in sorted({c.push.kind for c in conversations}):
        print(f"  {kind} pushes:")
        for line in crowd.describe([c for c in conversations if c.push.kind == kind]):
            print(f"    {line}")
    if endings:
        print(f"  tricklers: {dict(sorted(endings.items()))}")


@contextmanager
def service(options: argparse.Namespace, workdir: Path) -> Iterator[servers.Server]:
    env = {**service_env(workdir), "WX_HANDLERS": "bench.handlers", **shared.settings(options)}
    log = workdir / "server.log"
    with servers.gunicorn(
        "wsgi:app",
        workers=options.workers,
        env=env,
        args=shared.server_args(options),
        config=True,
        log=log,
    ) as server:
        yield server
    print(f"  server log: {servers.log_problems(log, workers=options.workers) or 'no errors'}")


@dataclass(frozen=True)
class Trickled:
    """A push to send slowly, and from where."""

    raw: bytes
    #: Trickle only the body (the headers go at once).
    body: bool
    #: The loopback address it comes from.
    source: str


def trickling(host: str, count: int) -> list[Trickled]:
    """``count`` valid pushes to trickle, half in their headers and half in their body.

    They come from loopback addresses other than the ordinary pushes' (127.0.0.1), at most
    ``PER_SOURCE`` from each, as an attacker is not WeChat: a per-address limit (the deploy
    kit's nginx has one) holds each source back without holding WeChat back.
    """
    return [
        Trickled(
            raw_request(*text_push(f"quick slow sender {n}", user(n)), host),
            n % 2 == 1,
            f"127.0.0.{2 + n // PER_SOURCE}",
        )
        for n in range(count)
    ]


def trickle_run(options: argparse.Namespace) -> None:
    print(
        f"slowclients/trickle: {options.tricklers} connections straight to gunicorn send a"
        f" push 1 byte/s (half headers, half body); ordinary pushes {options.rate:g}/s for"
        f" {options.seconds:g} s; wx-push: {shared.design(options)}"
    )
    print(f"  before the run: {report.machine()}")
    with tempfile.TemporaryDirectory(prefix="wx-bench-") as tmp, service(options, Path(tmp)) as s:
        pushes = ordinary(s.host, options, 1.0)
        slow = trickling(s.host, options.tricklers)
        show("trickle", *asyncio.run(under_pressure(s.host, pushes, slow)))


def hung_run(options: argparse.Namespace) -> None:
    print(
        f"slowclients/hung: {options.hung} pushes whose handler blocks for good (sent within"
        f" 1 s, retried as WeChat does); ordinary pushes {options.rate:g}/s for"
        f" {options.seconds:g} s; wx-push: {shared.design(options)}"
    )
    print(f"  before the run: {report.machine()}")
    with tempfile.TemporaryDirectory(prefix="wx-bench-") as tmp, service(options, Path(tmp)) as s:
        hung = [
            crowd.Push(
                "hung", n / options.hung, raw_request(*text_push(f"hang {n}", user(n)), s.host)
            )
            for n in range(options.hung)
        ]
        pushes = hung + ordinary(s.host, options, 1.0)
        show("hung", *asyncio.run(under_pressure(s.host, pushes, [])))
        # Has the service recovered once WeChat has given up on the hung pushes? A handler
        # pool full of hung handlers would never run another handler.
        time.sleep(options.settle)
        later = [
            crowd.Push(
                "ordinary",
                n / options.rate,
                raw_request(*text_push(f"quick later {n}", user(LATER_USERS + n)), s.host),
            )
            for n in range(10)
        ]
        print(f"  {options.settle:g} s after the last conversation, 10 more ordinary pushes:")
        for line in crowd.describe(asyncio.run(crowd.gather(s.host, later))):
            print(f"    {line}")
        threads = ", ".join(f"pid {pid}: {n}" for pid, (_, n) in s.memory().items())
        print(f"  worker threads then: {threads}")


def nginx_run(options: argparse.Namespace) -> None:
    print(
        f"slowclients/nginx: {options.nginx_tricklers} connections to nginx (the kit in"
        f" {options.nginx_kit}, worker_connections"
        f" {options.nginx_worker_connections or 'as the kit sets'}, TLS) send a push 1 byte/s"
        f" (half headers, half body); ordinary pushes {options.rate:g}/s through nginx for"
        f" {options.seconds:g} s; wx-push: {shared.design(options)}"
    )
    print(f"  before the run: {report.machine()}")
    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    with tempfile.TemporaryDirectory(prefix="wx-bench-") as tmp, service(options, Path(tmp)) as s:
        with proxy.nginx(
            options.nginx_kit,
            s.host,
            Path(tmp),
            worker_connections=options.nginx_worker_connections,
        ) as front:
            pushes = ordinary(front.https, options, 1.0)
            slow = trickling(front.https, options.nginx_tricklers)
            result = asyncio.run(under_pressure(front.https, pushes, slow, tls=tls))
        logs = {log.name: log.read_text(errors="replace") for log in Path(tmp).glob("*.log")}
        show("nginx", *result)
        errors = "".join(text for name, text in logs.items() if "error" in name)
        levels = Counter(re.findall(r"^\S+ \S+ \[(\w+)\]", errors, flags=re.M))
        print(f"  nginx error log lines by level: {dict(levels) or 'none'}")
        access = "".join(text for name, text in logs.items() if "access" in name)
        statuses = Counter(re.findall(r'" (\d{3}) ', access))
        if statuses:
            print(f"  nginx access log, by status: {dict(sorted(statuses.items()))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared.add_server_options(parser)
    parser.add_argument("--tricklers", type=int, default=200, help="straight to gunicorn (200)")
    parser.add_argument("--hung", type=int, default=200, help="pushes whose handler hangs (200)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of ordinary pushes (10)")
    parser.add_argument("--rate", type=float, default=5, help="ordinary pushes per second (5)")
    parser.add_argument(
        "--settle",
        type=float,
        default=20,
        help="seconds after the hung pushes' conversations before 10 more ordinary pushes (20)",
    )
    parser.add_argument(
        "--nginx-kit", type=Path, default=ROOT / "deploy", help="the deploy kit's directory"
    )
    parser.add_argument("--nginx-tricklers", type=int, default=2000, help="through nginx (2000)")
    parser.add_argument(
        "--nginx-worker-connections",
        type=int,
        default=None,
        help="instead of the kit's nginx-main.conf value (768 without one, as Debian ships)",
    )
    parser.add_argument(
        "--only", choices=("trickle", "hung", "nginx"), action="append", help="run only these"
    )
    options = parser.parse_args()
    servers.raise_open_files_limit()
    runs = options.only or ["trickle", "hung", "nginx"]
    if "trickle" in runs:
        trickle_run(options)
    if "hung" in runs:
        hung_run(options)
    if "nginx" in runs:
        if shutil.which("nginx") and shutil.which("openssl"):
            nginx_run(options)
        else:
            print("slowclients/nginx: skipped, nginx or openssl is not installed")


if __name__ == "__main__":
    main()
