"""The fuzz run as text: the figures, and each distinct failure with its shortest input."""

from __future__ import annotations

from .campaign import Report, Tally
from .runner import Plan

#: Bytes of an input shown in a failure report; the rest is elided.
SHOWN = 2000


def escape(data: bytes, limit: int = SHOWN) -> str:
    """Printable ASCII as is (a backslash doubled), other bytes as ``\\xNN``, cut at ``limit``."""
    shown = "".join(
        "\\\\" if b == 0x5C else chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in data[:limit]
    )
    return shown + (f"... ({len(data)} bytes)" if len(data) > limit else "")


def describe(number: int, report: Report) -> str:
    """A failure as a developer needs it: what raised where, and the input that does it."""
    failure, request = report.failure, report.request
    lines = [
        f"[{number}] {failure.signature}: {report.count:,} case(s)",
        f"    message: {failure.message}",
        f"    first seen: case {report.case} ({report.family}): {report.label[:200]!a}",
        f"    replay: .venv/bin/python bench/fuzz.py --replay {report.case}",
        f"    shortest message ({len(report.message)} bytes, {report.mode} mode,"
        f" {report.body_format}, before signing and encryption):",
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
        f"internal errors: {tally.internal_errors:,}; 5xx: {tally.server_errors:,};"
        f" unreadable replies: {tally.unreadable_replies:,}; distinct failures:"
        f" {len(tally.failures)}",
    ]
    for slow in tally.over_budget[:20]:
        lines.append(f"over budget: {slow.seconds:.2f} s, case {slow.case}: {slow.label[:120]!a}")
    for number, report in enumerate(tally.failures.values(), 1):
        lines.append(describe(number, report))
    return "\n".join(lines)
