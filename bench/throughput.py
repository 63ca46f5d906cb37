"""Pushes per second over loopback HTTP: the floor, wechatpy, and wx-push as users run it.

Four servers under gunicorn, each with the same number of workers (bench/lineup.py), answer
the same kind of pushes (safe-mode text, each with its own MsgId, signed just before its round):

* floor: a bare Flask endpoint that answers "success" (bench/floor_app.py), sync workers;
* wechatpy: what a wechatpy user writes, an encrypted echo (bench/wechatpy_app.py), sync
  workers;
* wx-push: ``gunicorn -c gunicorn.conf.py wsgi:app`` with the default settings (a SQLite store
  in a temporary directory, a log line per push, metrics on) and the demo echo handler;
* wx-push on Redis: the same with ``WX_STORE_URL=redis://…/14``.

wrk sends them from a file, one connection per push as WeChat does, in interleaved rounds
(A B C D A B C D …) so that a noisy machine slows all alike; each server's figure is its
median round. Then each server gets half its peak rate from an open-loop sender
(bench/openloop.py): the latency of a server that is busy but not saturated.

    .venv/bin/python bench/throughput.py [--workers 2] [--duration 5] [--rounds 3]
        [--concurrency 16] [--server-args '-k gevent'] [--env WX_HANDLER_THREADS=64]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import lineup, openloop, report, servers, wrk  # noqa: E402
from bench import options as shared  # noqa: E402
from bench.pushes import text_requests  # noqa: E402


def peak(server: servers.Server, best: float | None, options: argparse.Namespace) -> wrk.WrkResult:
    """One wrk round, with enough unique pushes for it going by the best round so far.

    Three times that, for a machine whose other load comes and goes; 6,000 a second before
    the first round.
    """
    count = math.ceil(options.duration * (max(best * 3, 2000) if best else 6000))
    return wrk.run(
        server.url + "/wx",
        text_requests(count, server.host),
        connections=options.concurrency,
        seconds=options.duration,
    )


def rate(rounds: list[wrk.WrkResult]) -> float:
    """The median round's rate."""
    return statistics.median(r.rate for r in rounds)


def measure(
    options: argparse.Namespace,
) -> tuple[
    list[lineup.Contender],
    list[list[wrk.WrkResult]],
    list[openloop.OpenLoopResult],
    list[float],
    list[float],
]:
    """Run the rounds, then the open-loop runs; return the contenders and their figures, the
    last two being each server's median CPU seconds and context switches per push."""
    with tempfile.TemporaryDirectory(prefix="wx-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        contenders = lineup.lineup(options, workdir, redis=options.redis)
        started = lineup.start(stack, contenders, workers=options.workers, workdir=workdir)
        cpu: list[list[float]] = [[] for _ in contenders]
        switches: list[list[float]] = [[] for _ in contenders]
        rounds: list[list[wrk.WrkResult]] = [[] for _ in contenders]
        for number in range(options.rounds):
            for server, done, used, handed in zip(started, rounds, cpu, switches, strict=True):
                before, switched = server.cpu_seconds(), server.context_switches()
                done.append(peak(server, max((r.rate for r in done), default=None), options))
                pushes = max(done[-1].requests, 1)
                used.append((server.cpu_seconds() - before) / pushes)
                handed.append(server.switches_since(switched) / pushes)
            print(f"round {number + 1}/{options.rounds} done", file=sys.stderr)
        halves = []
        for server, done in zip(started, rounds, strict=True):
            half = rate(done) / 2
            pushes = text_requests(math.ceil(half * options.open_seconds), server.host)
            halves.append(openloop.send_at_rate(server.host, pushes, half))
        stack.close()
        logged = lineup.problems(contenders, workdir, workers=options.workers)
    if logged:
        print(f"wx-push logged problems: {logged}")
    return (
        contenders,
        rounds,
        halves,
        [statistics.median(used) for used in cpu],
        [statistics.median(handed) for handed in switches],
    )


def show(
    options: argparse.Namespace,
    contenders: list[lineup.Contender],
    rounds: list[list[wrk.WrkResult]],
    halves: list[openloop.OpenLoopResult],
    cpu: list[float],
    switches: list[float],
) -> None:
    rows = []
    for contender, done, half, used, handed in zip(
        contenders, rounds, halves, cpu, switches, strict=True
    ):
        middle = sorted(done, key=lambda r: r.rate)[len(done) // 2]
        errors = sum(sum(r.errors.values()) for r in done)
        rows.append(
            [
                contender.name,
                rate(done),
                " ".join(f"{r.rate:.0f}" for r in done),
                middle.p50_ms,
                middle.p99_ms,
                errors,
                f"{half.rate:.0f}/s",
                report.percentile(half.seconds, 0.5) * 1000,
                report.percentile(half.seconds, 0.99) * 1000,
                half.failed,
                half.lag * 1000,
                used * 1000,
                handed,
            ]
        )
    headers = ["server", "req/s", "rounds", "p50 ms", "p99 ms", "errors"]
    headers += ["half rate", "p50 ms", "p99 ms", "failed", "lag ms", "CPU ms/push", "switches"]
    print(report.table(headers, rows))
    print(
        "req/s, p50, p99: wrk (closed loop), median round; errors: wrk's socket errors and"
        " non-2xx answers. half rate: open loop at half the peak, latency counted from when"
        " each push was due; lag: the sender's own worst delay behind schedule. CPU ms/push:"
        " the workers' user and system time over the pushes of a peak round (median), which"
        " a busy machine distorts far less than rates. switches: the workers' threads' context"
        " switches per push over the same rounds (median), a count the machine changes less"
        " still."
    )
    names = {c.role: c.name for c in contenders}
    peaks = {c.role: rate(done) for c, done in zip(contenders, rounds, strict=True)}
    p99s = {c.role: _p99(half) for c, half in zip(contenders, halves, strict=True)}
    ours = peaks["ours"]
    costs = {c.role: used for c, used in zip(contenders, cpu, strict=True)}
    print(
        f"CPU per push: wx-push / wechatpy {costs['ours'] / costs['wechatpy']:.2f},"
        f" wx-push / floor {costs['ours'] / costs['floor']:.2f}"
    )
    print(
        f"wx-push / wechatpy: req/s {ours / peaks['wechatpy']:.2f},"
        f" p99 at half rate {p99s['ours'] / p99s['wechatpy']:.1f}x;"
        f" wx-push / floor: req/s {ours / peaks['floor']:.2f}"
    )
    if "redis" in peaks:
        print(f"{names['redis']} / {names['ours']}: req/s {peaks['redis'] / ours:.2f}")
    if "present" in peaks:
        print(
            f"{names['ours']} / {names['present']}: req/s {ours / peaks['present']:.2f},"
            f" p99 at half rate {p99s['ours'] / p99s['present']:.1f}x"
        )
    if any(r.wrapped for done in rounds for r in done):
        print("note: wrk ran out of unique pushes in a round; some pushes were repeats")


def _p99(half: openloop.OpenLoopResult) -> float:
    return report.percentile(half.seconds, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared.add_server_options(parser)
    lineup.add_options(parser)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk round (5)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--concurrency", type=int, default=16, help="wrk connections (16)")
    parser.add_argument(
        "--open-seconds", type=float, default=5, help="seconds of open-loop load at half rate (5)"
    )
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/14",
        help="Redis for the second wx-push ('' to skip)",
    )
    options = parser.parse_args()
    before = report.machine()
    contenders, rounds, halves, cpu, switches = measure(options)
    print(
        f"throughput: {options.workers} workers per server, {options.concurrency} connections,"
        f" {options.rounds} interleaved rounds of {options.duration:g} s;"
        f" wx-push: {shared.design(options)}"
    )
    print(f"before the run: {before}")
    show(options, contenders, rounds, halves, cpu, switches)


if __name__ == "__main__":
    main()
