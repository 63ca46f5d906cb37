"""The servers compared by throughput.py and sweep.py, started side by side.

All of them run at once, each with the same number of gunicorn workers, so that the commands
can interleave their rounds: a burst of load from the rest of the machine then slows every
server a little instead of one of them a lot.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench import options as shared
from bench import servers
from bench.account import service_env
from bench.pushes import builder
from tests.servers import request


@dataclass(frozen=True)
class Contender:
    """One server under test: how to start it and what it should answer."""

    #: "floor", "wechatpy", "ours" (wx-push as given), "redis" (the same on Redis),
    #: "present" (wx-push with gunicorn.conf.py and the settings as they are), or another
    #: wx-push of bench/breakdown.py's.
    role: str
    name: str
    app: str
    env: dict[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()

    @property
    def ours(self) -> bool:
        """Whether this is wx-push, which reads gunicorn.conf.py (the others take defaults)."""
        return self.role not in ("floor", "wechatpy")

    @property
    def echoes(self) -> bool:
        """Whether it answers a text with an encrypted echo (the floor answers "success")."""
        return self.role != "floor"


def add_options(parser: argparse.ArgumentParser) -> None:
    """Add --baseline, which runs the present design too when comparing another."""
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also run wx-push as it is (gunicorn.conf.py, no --env), interleaved with the"
        " design given",
    )


def lineup(options: argparse.Namespace, workdir: Path, *, redis: str = "") -> list[Contender]:
    """floor, wechatpy, wx-push on SQLite, wx-push on Redis (when ``redis`` answers), and
    wx-push as it is (with ``--baseline``)."""
    args = tuple(shared.server_args(options))
    kind = _worker_class(args)
    env = service_env(workdir, shared.settings(options))
    found = [
        Contender("floor", "floor: bare Flask, sync", "bench.floor_app:app"),
        Contender("wechatpy", "wechatpy + Flask, sync", "bench.wechatpy_app:app"),
        Contender("ours", f"wx-push, {kind}, {_store(env)}", "wsgi:app", env, args),
    ]
    if redis and _redis_answers(redis):
        url = f"{redis}?prefix=bench-{secrets.token_hex(4)}:"
        redis_env = {**env, "WX_STORE_URL": url}
        found.append(Contender("redis", f"wx-push, {kind}, Redis", "wsgi:app", redis_env, args))
    elif redis:
        print(f"no Redis answers at {redis}: wx-push on Redis skipped", file=sys.stderr)
    if options.baseline:
        present = service_env(workdir / "present")
        found.append(Contender("present", "wx-push as it is, SQLite", "wsgi:app", present))
    return found


def by_role(contenders: list[Contender], role: str) -> int | None:
    """The index of the contender playing ``role``, if any."""
    return next((n for n, c in enumerate(contenders) if c.role == role), None)


def start(
    stack: contextlib.ExitStack, contenders: list[Contender], *, workers: int, workdir: Path
) -> list[servers.Server]:
    """Start every contender (stopped when ``stack`` closes) and check one push on each.

    Each server's output goes to ``workdir/server-<n>.log``.
    """
    started = []
    for n, contender in enumerate(contenders):
        server = stack.enter_context(
            servers.gunicorn(
                contender.app,
                workers=workers,
                env=contender.env,
                args=contender.args,
                config=contender.ours,
                log=workdir / f"server-{n}.log",
            )
        )
        _smoke(server, contender)
        started.append(server)
    return started


def problems(contenders: list[Contender], workdir: Path, *, workers: int) -> dict[str, int]:
    """What went wrong in the wx-push servers' logs (there should be nothing), by kind."""
    found: Counter[str] = Counter()
    for n, contender in enumerate(contenders):
        if contender.ours:
            found.update(servers.log_problems(workdir / f"server-{n}.log", workers=workers))
    return dict(found)


def _smoke(server: servers.Server, contender: Contender) -> None:
    """One push before measuring: the server answers what it should, or the run stops."""
    wechat = builder()
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "smoke"}))
    result = wechat.read(*request("POST", server.url + "/wx", query, body))
    content = getattr(result.reply, "content", None)
    if result.status != 200 or content != ("smoke" if contender.echoes else None):
        raise SystemExit(f"{contender.name}: answered {result.status} {result.body[:200]!r}")


def _store(env: dict[str, str]) -> str:
    """The kind of store the settings name, as the tables show it."""
    scheme = env["WX_STORE_URL"].split(":", 1)[0]
    return {"sqlite": "SQLite", "redis": "Redis", "rediss": "Redis"}.get(scheme, scheme)


def _worker_class(args: tuple[str, ...]) -> str:
    for flag in ("-k", "--worker-class"):
        if flag in args[:-1]:
            return args[args.index(flag) + 1]
    return os.environ.get("GUNICORN_WORKER_CLASS") or "gevent"  # gunicorn.conf.py's default


def _redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except redis.RedisError:
        return False
