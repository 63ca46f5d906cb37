"""A burst of slow conversations: what users get when many pushes need a slow handler at once.

N distinct users (500) each send one text within one second to wx-push, whose handler for them
sleeps 8 s (BENCH_SLEEP); WeChat is played as documented (each attempt waits up to 5 s, no
answer → the same push again, 3 attempts at most). Meanwhile 20 ordinary pushes, answered at
once by their handler, arrive over the first 10 s. Then the same with a handler that burns 3 s
of CPU (a few users): does it stall the other pushes?

Printed per run: users answered with a passive reply and on which attempt, handler runs per
push (none should run twice; counted across workers in an O_APPEND file), how the quick
pushes fared, and each worker's resident memory and threads during the burst.

    .venv/bin/python bench/burst.py [--users 500] [--sleep 8] [--spin-users 4] [--spin 3]
        [--server-args '-k gevent --worker-connections 2000'] [--env WX_HANDLER_THREADS=2000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import crowd, report, servers  # noqa: E402
from bench import options as shared  # noqa: E402
from bench.account import service_env  # noqa: E402
from bench.pushes import builder, raw_request, user  # noqa: E402

#: Users of the quick pushes are numbered from here, apart from the burst's.
QUICK_USERS = 1_000_000


def push(kind: str, content: str, sender: str, at: float, host: str) -> tuple[str, crowd.Push]:
    """A text push and the key its handler run is counted under (bench/handlers.py)."""
    wechat = builder(sender)
    fields = wechat.complete({"MsgType": "text", "Content": content})
    return f"{sender} {fields['MsgId']}", crowd.Push(
        kind, at, raw_request(*wechat.build(fields), host)
    )


def crowd_of(
    kind: str, users: int, options: argparse.Namespace, host: str
) -> dict[str, crowd.Push]:
    """``users`` pushes of ``kind`` within one second, and the quick pushes among them."""
    pushes = dict(push(kind, f"{kind} {n}", user(n), n / users, host) for n in range(users))
    spacing = options.quick_over / options.quick
    for n in range(options.quick):
        key, quick = push("quick", f"quick {n}", user(QUICK_USERS + n), 0.25 + n * spacing, host)
        pushes[key] = quick
    return pushes


def runs(path: Path) -> Counter[str]:
    """Handler runs by push, from the file bench/handlers.py appends to."""
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(lines)


def burst(options: argparse.Namespace, kind: str, users: int, what: str) -> None:
    print(
        f"burst/{kind}: {users} users each send one text within 1 s, {what};"
        f" {options.quick} quick pushes over {options.quick_over:g} s;"
        f" wx-push: {shared.design(options)}"
    )
    print(f"  before the run: {report.machine()}")
    with tempfile.TemporaryDirectory(prefix="wx-bench-") as tmp:
        workdir = Path(tmp)
        counted = workdir / "runs.log"
        env = {
            **service_env(workdir),
            "WX_HANDLERS": "bench.handlers",
            "BENCH_RUNS": str(counted),
            "BENCH_SLEEP": str(options.sleep),
            "BENCH_SPIN": str(options.spin),
            **shared.settings(options),
        }
        log = workdir / "server.log"
        with servers.gunicorn(
            "wsgi:app",
            workers=options.workers,
            env=env,
            args=shared.server_args(options),
            config=True,
            log=log,
        ) as server:
            pids = server.workers()
            memory = crowd.MemoryWatch(lambda: server.memory(pids))
            pushes = crowd_of(kind, users, options, server.host)
            started = time.monotonic()
            conversations = asyncio.run(
                crowd.gather(server.host, list(pushes.values()), tick=memory)
            )
            took = time.monotonic() - started
            during = runs(counted)
        after = runs(counted)
        problems = servers.log_problems(log, workers=options.workers)
    for label in (kind, "quick"):
        chosen = [c for c in conversations if c.push.kind == label]
        print(f"  {label} pushes:")
        for line in crowd.describe(chosen):
            print(f"    {line}")
    for label, counts in (
        (f"as the last conversation ended ({took:.0f} s)", during),
        ("at shutdown", after),
    ):
        per_push = Counter(min(counts[key], 2) for key in pushes)
        twice = Counter(push.kind for key, push in pushes.items() if counts[key] > 1)
        print(
            f"  handler runs {label}: pushes run never {per_push[0]}, once {per_push[1]},"
            f" twice or more {per_push[2]}{f' {dict(twice)}' if twice else ''}"
        )
    print(f"  workers during the burst: {memory.describe()}")
    print(f"  server log: {problems or 'no errors'}")
    print(f"  after the run: {report.machine()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared.add_server_options(parser)
    parser.add_argument("--users", type=int, default=500, help="users of the slow burst (500)")
    parser.add_argument(
        "--sleep", type=float, default=8, help="seconds the slow handler sleeps (8)"
    )
    parser.add_argument("--spin-users", type=int, default=4, help="users of the CPU burst (4)")
    parser.add_argument(
        "--spin", type=float, default=3, help="CPU seconds a spin handler burns (3)"
    )
    parser.add_argument("--quick", type=int, default=20, help="quick pushes during a burst (20)")
    parser.add_argument(
        "--quick-over", type=float, default=10, help="seconds the quick pushes are spread over (10)"
    )
    parser.add_argument("--skip-spin", action="store_true", help="run the sleeping burst only")
    options = parser.parse_args()
    servers.raise_open_files_limit()
    burst(options, "slow", options.users, f"its handler sleeps {options.sleep:g} s")
    if not options.skip_spin:
        burst(options, "spin", options.spin_users, f"its handler burns {options.spin:g} s of CPU")


if __name__ == "__main__":
    main()
