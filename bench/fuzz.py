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

from bench.fuzzing.campaign import BUDGET, Campaign, Tally  # noqa: E402
from bench.fuzzing.cases import FAMILIES  # noqa: E402
from bench.fuzzing.report import escape, summary  # noqa: E402
from bench.fuzzing.runner import HANG, Plan, run  # noqa: E402
from bench.fuzzing.target import Target  # noqa: E402


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
