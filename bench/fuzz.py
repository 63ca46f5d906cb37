"""Fuzz the callback URL in process: a million hostile pushes, zero internal errors expected.

Every case is signed (and, in compatible and safe mode, encrypted) as WeChat would do it, so it
gets past the signature checks to the parser, the message model, the ledger, the handler and
the reply; see bench/fuzzing/ for the case families. Cases run on the Flask test client against
``create_app`` with a memory store and echoing handlers, on ``--jobs`` worker processes.

    .venv/bin/python bench/fuzz.py --cases 1000000 [--seed 1] [--jobs 2]
    .venv/bin/python bench/fuzz.py --replay 1:4242     # one case, with the service's log

Prints cases/s, the count of answers by HTTP status and by family, the count of internal
errors (requests that reached the catch-all error handler or logged a traceback, 5xx, hangs,
exceptions out of the test client) and each distinct failure once, with the shortest input
found to reproduce it. Exits 1 if there was an internal error, a 5xx, or a case slower than
``--budget`` seconds (measured twice), else 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fuzzing.campaign import BUDGET, Campaign, Report, Tally  # noqa: E402
from bench.fuzzing.cases import FAMILIES  # noqa: E402
from bench.fuzzing.runner import HANG, Plan, run  # noqa: E402
from bench.fuzzing.target import Target  # noqa: E402

#: Bytes of an input shown in a failure report; the rest is elided.
SHOWN = 2000


def escape(data: bytes, limit: int = SHOWN) -> str:
    """Printable ASCII as is, every other byte as ``\\xNN``, cut after ``limit`` bytes."""
    shown = "".join(
        chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in data[:limit]
    )
    return shown + (f"... ({len(data)} bytes)" if len(data) > limit else "")


def describe(number: int, report: Report) -> str:
    """A failure as a developer needs it: what raised where, and the input that does it."""
    failure, request = report.failure, report.request
    lines = [
        f"[{number}] {failure.signature}: {report.count:,} case(s)",
        f"    message: {failure.message}",
        f"    first seen: case {report.case} ({report.family}, {report.mode} mode,"
        f" {report.body_format}): {report.label[:200]!a}",
        f"    replay: .venv/bin/python bench/fuzz.py --replay {report.case}",
        f"    shortest message ({len(report.message)} bytes, before signing and encryption):",
        f"        {escape(report.message)}",
        f"    carried as: {request.method} /wx?{escape(request.query.encode(), 600)}",
    ]
    if request.body != report.message:
        lines.append(f"    body: {escape(request.body, 600)}")
    for name, value in request.headers:
        lines.append(f"    header: {name}: {escape(value.encode(), 200)}")
    return "\n".join(lines)


def summary(tally: Tally, seconds: float, plan: Plan) -> str:
    """The figures of a run."""
    rate = tally.cases / seconds if seconds else 0.0
    statuses = ", ".join(f"{status}: {n:,}" for status, n in sorted(tally.statuses.items()))
    families = ", ".join(f"{key}: {n:,}" for key, n in sorted(tally.families.items()))
    refusals = ", ".join(f"{key}: {n:,}" for key, n in tally.refusals.most_common())
    slowest = tally.slowest
    lines = [
        f"seed {plan.seed}, cases {plan.first:,}..{plan.first + plan.cases - 1:,},"
        f" {plan.jobs} process(es), families {', '.join(plan.families)}",
        f"{tally.cases:,} cases in {seconds:.1f} s: {rate:,.0f} cases/s",
        f"by status: {statuses}",
        f"by family: {families}",
        f"refusals: {refusals}",
        f"slowest case: {slowest.seconds * 1000:.1f} ms (case {slowest.case},"
        f" {slowest.label[:80]!a}); budget {plan.budget:g} s,"
        f" over budget twice: {len(tally.over_budget)}",
        f"internal errors: {tally.internal_errors:,} ({len(tally.failures)} distinct);"
        f" 5xx: {tally.server_errors:,}",
    ]
    for slow in tally.over_budget[:20]:
        lines.append(f"over budget: {slow.seconds:.2f} s, case {slow.case}: {slow.label[:120]!a}")
    for number, report in enumerate(tally.failures.values(), 1):
        lines.append(describe(number, report))
    return "\n".join(lines)


def replay(seed: int, index: int) -> int:
    """Run one case with the service's log on stderr; exit status 1 if it failed."""
    campaign = Campaign(seed)
    case = campaign.case(index)
    request = case.request()
    print(f"case {case.name}: {case.family}, {case.mode.value} mode, {case.body_format.value}")
    print(f"label: {case.label!a}")
    print(f"message: {escape(case.message)}")
    print(f"{request.method} /wx?{escape(request.query.encode())}")
    print(f"body: {escape(request.body)}")
    with Target() as target:
        stream = logging.StreamHandler(sys.stderr)
        logging.getLogger("app").addHandler(stream)
        logging.getLogger("app").setLevel(logging.INFO)
        outcome = target.send(request)
    print(f"status {outcome.status} in {outcome.seconds * 1000:.1f} ms")
    if outcome.failure is not None:
        print(f"internal error: {outcome.failure.signature}: {outcome.failure.message}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases to run (100,000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the cases (1)")
    parser.add_argument("--first", type=int, default=0, help="index of the first case (0)")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (all cores)"
    )
    parser.add_argument("--chunk", type=int, default=5000, help="cases per task (5,000)")
    parser.add_argument(
        "--family", action="append", choices=list(FAMILIES), help="only these families"
    )
    parser.add_argument("--budget", type=float, default=BUDGET, help="seconds per case (1)")
    parser.add_argument("--hang", type=float, default=HANG, help="seconds before a kill (20)")
    parser.add_argument("--replay", metavar="SEED:INDEX", help="run one case, with its log")
    args = parser.parse_args(argv)
    if args.replay:
        seed, _, index = args.replay.partition(":")
        return replay(int(seed), int(index))
    plan = Plan(
        seed=args.seed,
        cases=args.cases,
        jobs=args.jobs,
        chunk=args.chunk,
        first=args.first,
        families=tuple(args.family or FAMILIES),
        budget=args.budget,
        hang=args.hang,
    )
    started = time.monotonic()
    every = max(plan.cases // 20, 1)
    shown = [0]

    def progress(tally: Tally) -> None:
        if tally.cases - shown[0] >= every or tally.cases == plan.cases:
            shown[0] = tally.cases
            rate = tally.cases / (time.monotonic() - started)
            errors = tally.internal_errors
            print(f"  {tally.cases:,} cases, {rate:,.0f}/s, internal errors {errors:,}", flush=True)

    tally = run(plan, progress)
    print(summary(tally, time.monotonic() - started, plan))
    return 0 if tally.ok else 1


if __name__ == "__main__":
    sys.exit(main())
