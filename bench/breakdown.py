"""Where a push's CPU goes: wx-push with its shared store or its handler thread taken away.

wx-push claims every push in a store all its workers share, and runs every handler on a native
thread; wechatpy does neither. This prices each of the two, by CPU per push, against wechatpy in
one run (gunicorn, the same pushes and worker count as bench/throughput.py, interleaved rounds):

* wechatpy + Flask, sync workers (bench/wechatpy_app.py);
* wx-push as shipped: gunicorn.conf.py, the SQLite store, handlers on native threads;
* the same on ``memory://``: each worker keeps its own ledger, so single flight holds only
  within a worker;
* the same with each handler run on the request's greenlet (bench/inline_app.py), on SQLite
  and on ``memory://``: a CPU-bound or blocking handler then holds up its worker's other
  pushes.

The last two are measuring devices, not designs: each gives up a guarantee of the service. What
the figures say is how much of wx-push's CPU per push those guarantees cost.

    .venv/bin/python bench/breakdown.py [--workers 2] [--duration 5] [--rounds 3]
        [--concurrency 16]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import lineup, report, wrk  # noqa: E402
from bench.account import service_env  # noqa: E402
from bench.throughput import peak, rate  # noqa: E402

MEMORY = {"WX_STORE_URL": "memory://"}


def contenders(workdir: Path) -> list[lineup.Contender]:
    """wechatpy, then wx-push with both guarantees, with either one, and with neither."""
    sqlite = service_env(workdir)
    memory = service_env(workdir, MEMORY)
    return [
        lineup.Contender("wechatpy", "wechatpy + Flask, sync", "bench.wechatpy_app:app"),
        lineup.Contender("ours", "wx-push as shipped (SQLite, thread)", "wsgi:app", sqlite),
        lineup.Contender("memory", "wx-push, memory://, thread", "wsgi:app", memory),
        lineup.Contender("inline", "wx-push, SQLite, inline", "bench.inline_app:app", sqlite),
        lineup.Contender("neither", "wx-push, memory://, inline", "bench.inline_app:app", memory),
    ]


def measure(
    options: argparse.Namespace,
) -> tuple[list[lineup.Contender], list[list[wrk.WrkResult]], list[float]]:
    """Run the interleaved rounds; each contender's rounds and median CPU seconds per push."""
    with tempfile.TemporaryDirectory(prefix="wx-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        lined_up = contenders(workdir)
        started = lineup.start(stack, lined_up, workers=options.workers, workdir=workdir)
        rounds: list[list[wrk.WrkResult]] = [[] for _ in lined_up]
        cpu: list[list[float]] = [[] for _ in lined_up]
        for number in range(options.rounds):
            for server, done, used in zip(started, rounds, cpu, strict=True):
                before = server.cpu_seconds()
                done.append(peak(server, max((r.rate for r in done), default=None), options))
                used.append((server.cpu_seconds() - before) / max(done[-1].requests, 1))
            print(f"round {number + 1}/{options.rounds} done", file=sys.stderr)
        stack.close()
        logged = lineup.problems(lined_up, workdir, workers=options.workers)
    if logged:
        print(f"wx-push logged problems: {logged}")
    return lined_up, rounds, [statistics.median(used) for used in cpu]


def show(
    lined_up: list[lineup.Contender], rounds: list[list[wrk.WrkResult]], cpu: list[float]
) -> None:
    costs = {c.role: used * 1000 for c, used in zip(lined_up, cpu, strict=True)}
    wechatpy = costs["wechatpy"]
    rows = [
        [c.name, rate(done), f"{costs[c.role]:.2f}", f"{costs[c.role] / wechatpy:.2f}x"]
        for c, done in zip(lined_up, rounds, strict=True)
    ]
    print(report.table(["server", "req/s", "CPU ms/push", "CPU / wechatpy"], rows))
    print(
        "req/s: wrk (closed loop), median round. CPU ms/push: the workers' user and system"
        " time over the pushes of a round (median)."
    )
    store = (costs["ours"] - costs["memory"], costs["inline"] - costs["neither"])
    thread = (costs["ours"] - costs["inline"], costs["memory"] - costs["neither"])
    print(
        f"shared store (SQLite against memory://): {store[0]:+.2f} ms a push with handler"
        f" threads, {store[1]:+.2f} ms without"
    )
    print(
        f"handler thread (against the request's greenlet): {thread[0]:+.2f} ms a push on"
        f" SQLite, {thread[1]:+.2f} ms on memory://"
    )
    print(
        f"CPU per push / wechatpy: {costs['ours'] / wechatpy:.2f} as shipped,"
        f" {costs['neither'] / wechatpy:.2f} with neither"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per server (2)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round (5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--concurrency", type=int, default=16, help="wrk connections (16)")
    options = parser.parse_args()
    before = report.machine()
    lined_up, rounds, cpu = measure(options)
    print(
        f"breakdown: {options.workers} workers per server, {options.concurrency} connections,"
        f" {options.rounds} interleaved rounds of {options.duration:g} s"
    )
    print(f"before the run: {before}")
    show(lined_up, rounds, cpu)


if __name__ == "__main__":
    main()
