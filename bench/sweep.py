"""Throughput against concurrency for the floor, wechatpy and wx-push, as a table and a plot.

The servers of bench/throughput.py (without Redis) answer wrk at each concurrency in turn,
interleaved (floor, wechatpy, wx-push at c=1, then at c=2, …, then all again), one connection
per push; each point is the median round. The plot (matplotlib, no display needed) shows
req/s and wrk's p99 against the connections open.

    .venv/bin/python bench/sweep.py [--concurrency 1,2,4,8,16,32,64] [--duration 1] [--rounds 3]
        [--plot bench/results/sweep.png] [--server-args ...] [--env KEY=VAL]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import lineup, report, wrk  # noqa: E402
from bench import options as shared  # noqa: E402
from bench.pushes import text_requests  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"

#: Name of the contender → {concurrency: wrk result of the median round}.
Sweep = dict[str, dict[int, wrk.WrkResult]]


def measure(options: argparse.Namespace, levels: list[int]) -> Sweep:
    """Every level for every server, interleaved, ``options.rounds`` times over."""
    done: dict[tuple[str, int], list[wrk.WrkResult]] = {}
    with tempfile.TemporaryDirectory(prefix="wx-bench-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        contenders = lineup.lineup(options, workdir)
        started = lineup.start(stack, contenders, workers=options.workers, workdir=workdir)
        fastest: dict[str, float] = {}
        for number in range(options.rounds):
            for level in levels:
                for server, contender in zip(started, contenders, strict=True):
                    # Enough unique pushes for the point, going by the server's best so far.
                    rate = fastest.get(contender.name, 3000.0)
                    count = math.ceil(options.duration * max(rate * 3, 2000))
                    result = wrk.run(
                        server.url + "/wx",
                        text_requests(count, server.host),
                        connections=level,
                        seconds=options.duration,
                    )
                    done.setdefault((contender.name, level), []).append(result)
                    fastest[contender.name] = max(fastest.get(contender.name, 0.0), result.rate)
            print(f"round {number + 1}/{options.rounds} done", file=sys.stderr)
        stack.close()
        logged = lineup.problems(contenders, workdir, workers=options.workers)
    if logged:
        print(f"wx-push logged problems: {logged}")
    sweep: Sweep = {}
    for (name, level), results in done.items():
        sweep.setdefault(name, {})[level] = sorted(results, key=lambda r: r.rate)[len(results) // 2]
    return sweep


def plot(sweep: Sweep, title: str, path: Path) -> None:
    """req/s and p99 against concurrency, one line per server, saved as a PNG."""
    figure, (rates, tails) = plt.subplots(1, 2, figsize=(11, 4.2))
    levels = sorted({c for results in sweep.values() for c in results})
    for name, results in sweep.items():
        rates.plot(levels, [results[c].rate for c in levels], marker="o", label=name)
        tails.plot(levels, [results[c].p99_ms for c in levels], marker="o", label=name)
    for axes, label in ((rates, "pushes answered per second"), (tails, "p99 latency (ms)")):
        axes.set_xscale("log", base=2)
        axes.set_xticks(levels, [str(c) for c in levels])
        axes.set_xlabel("connections (wrk, one push per connection)")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
    rates.set_ylim(bottom=0)
    tails.set_yscale("log")
    tails.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    tails.yaxis.set_major_formatter(ScalarFormatter())
    tails.yaxis.set_minor_formatter(NullFormatter())
    rates.legend(fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shared.add_server_options(parser)
    lineup.add_options(parser)
    parser.add_argument(
        "--concurrency", default="1,2,4,8,16,32,64", help="connection counts (1,2,4,8,16,32,64)"
    )
    parser.add_argument("--duration", type=int, default=1, help="seconds per point (1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all points (3)")
    parser.add_argument("--plot", type=Path, default=RESULTS / "sweep.png", help="the PNG to write")
    options = parser.parse_args()
    levels = [int(c) for c in options.concurrency.split(",")]
    before = report.machine()
    sweep = measure(options, levels)
    heading = (
        f"sweep: {options.workers} workers per server, median of {options.rounds} interleaved"
        f" rounds of {options.duration:g} s per point;"
        f" wx-push: {shared.design(options)}"
    )
    print(heading)
    print(f"before the run: {before}")
    names = list(sweep)
    rows = [[f"c={c}", *(sweep[n][c].rate for n in names)] for c in levels]
    print(report.table(["req/s", *names], rows))
    rows = [[f"c={c}", *(sweep[n][c].p99_ms for n in names)] for c in levels]
    print(report.table(["p99 ms", *names], rows))
    plot(sweep, f"{heading}\n{before}", options.plot)
    figures = {n: {c: dataclasses.asdict(r) for c, r in sweep[n].items()} for n in names}
    options.plot.with_suffix(".json").write_text(json.dumps(figures, indent=1))
    print(f"plot: {options.plot}")


if __name__ == "__main__":
    main()
