"""A slice of the fuzz command (bench/fuzz.py) in every test run, and the fuzzer's own checks.

The slice is 20,000 cases of a fixed seed, every family, mode and format, on a worker process
with the command's watchdog, so a case that hangs fails the test instead of stopping the run.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from app import views
from app.wechat.codec import BodyFormat
from app.wechat.envelope import Mode
from app.wechat.messages import Message, parse_message
from bench.fuzzing.campaign import Campaign
from bench.fuzzing.cases import FAMILIES
from bench.fuzzing.mutations import valid_push
from bench.fuzzing.report import summary
from bench.fuzzing.runner import Plan, run
from bench.fuzzing.target import Target
from bench.fuzzing.tree import render_xml
from bench.fuzzing.wire import Wire

SLICE = Plan(seed=2026, cases=20_000, jobs=1, chunk=5_000, hang=10.0)


def test_a_slice_of_the_fuzz_run_has_no_internal_error_and_no_5xx() -> None:
    tally = run(SLICE)
    report = summary(tally, 1.0, SLICE)
    assert tally.cases == SLICE.cases
    assert tally.internal_errors == 0, report
    assert tally.server_errors == 0, report
    assert tally.unreadable_replies == 0, report
    assert not tally.failures, report
    # Every family gets cases past the signature and parsing checks, else it tests little.
    for family in FAMILIES:
        assert tally.families[f"{family} 200"] > SLICE.cases // 100, report


def test_a_fault_is_found_counted_and_shrunk(monkeypatch: pytest.MonkeyPatch) -> None:
    def planted(fields: Mapping[str, Any]) -> Message:
        if any("\x00" in value for value in fields.values() if isinstance(value, str)):
            raise RuntimeError("planted fault")
        return parse_message(fields)

    monkeypatch.setattr(views, "parse_message", planted)
    tally = Campaign(7, families=("mutate",)).run(0, 3000)
    (signature,) = tally.failures
    report = tally.failures[signature]
    assert signature.startswith("RuntimeError at tests/test_fuzz.py:")
    assert report.failure.message == "'planted fault'"
    assert tally.internal_errors == report.count > 1
    assert b"\\u0000" in report.message
    assert len(report.message) < 200


def test_a_retry_is_told_from_a_first_attempt() -> None:
    rng = random.Random(1)
    message = render_xml(valid_push(rng, "subscribe", BodyFormat.XML), rng)
    request = Wire().carrier(Mode.SAFE, BodyFormat.XML, rng)(message)
    with Target() as target:
        first, again = target.send(request), target.send(request)
    assert (first.status, first.retry) == (200, False)
    assert (again.status, again.retry, again.body) == (200, True, first.body)
