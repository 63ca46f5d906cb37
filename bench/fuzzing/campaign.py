"""Running cases and keeping score: counts by status, the slowest case, each distinct failure.

A failure is reported once per signature (exception type and the line that raised it) with the
shortest message found to reproduce it: the first case that hits a signature in a process is
shrunk by cutting ever smaller pieces out of its message and keeping a cut whenever what is
left, signed and encrypted again, still fails the same way. Each try runs against a fresh app,
so that the ledger's memory of the previous try (a retry is answered differently) cannot
change the outcome.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from app.wechat.envelope import Mode

from .cases import FAMILIES, Case, make_case
from .replies import handshake_problem, problem
from .target import Failure, Outcome, Target
from .wire import Request, Wire

#: The kind of failure of an answer WeChat could not read.
UNREADABLE = "UnreadableReply"

#: Seconds one case may take; more is an algorithmic blowup (a regex that backtracks...).
BUDGET = 1.0
#: Requests one shrink may spend.
SHRINK_RUNS = 400


@dataclass
class Report:
    """A distinct failure: how often it happened and the shortest input known to cause it."""

    failure: Failure
    count: int
    #: The case it was first seen in, ``seed:index``, its family and what that case did.
    case: str
    family: str
    label: str
    #: The shortest message found to reproduce it, how it was carried, and the request.
    mode: str
    body_format: str
    message: bytes
    request: Request


@dataclass
class Slow:
    """A case that took longer than the budget, twice."""

    seconds: float
    case: str
    label: str


@dataclass
class Tally:
    """What a range of cases did; tallies of ranges run apart add up with :meth:`merge`."""

    cases: int = 0
    #: By HTTP status, as text; ``escaped`` when an exception left the test client.
    statuses: Counter[str] = field(default_factory=Counter)
    #: By ``family status``.
    families: Counter[str] = field(default_factory=Counter)
    #: By the error class of a 4xx.
    refusals: Counter[str] = field(default_factory=Counter)
    #: Distinct failures by signature.
    failures: dict[str, Report] = field(default_factory=dict)
    slowest: Slow = field(default_factory=lambda: Slow(0.0, "", ""))
    over_budget: list[Slow] = field(default_factory=list)

    @property
    def internal_errors(self) -> int:
        """Requests that failed inside the service (each counted once)."""
        return sum(r.count for r in self.failures.values() if r.failure.kind != UNREADABLE)

    @property
    def unreadable_replies(self) -> int:
        """Answers WeChat could not read."""
        return sum(r.count for r in self.failures.values() if r.failure.kind == UNREADABLE)

    @property
    def server_errors(self) -> int:
        """Answers with a 5xx status."""
        return sum(n for status, n in self.statuses.items() if status.startswith("5"))

    @property
    def ok(self) -> bool:
        """No failure of any kind, no 5xx and no case over the budget."""
        return not (self.failures or self.server_errors or self.over_budget)

    def add(self, case: Case, outcome: Outcome) -> None:
        """Count one case's outcome (its failure, if any, is added with :meth:`fail`)."""
        status = "escaped" if outcome.status is None else str(outcome.status)
        self.cases += 1
        self.statuses[status] += 1
        self.families[f"{case.family} {status}"] += 1
        if outcome.refusal is not None:
            self.refusals[outcome.refusal] += 1
        if outcome.seconds > self.slowest.seconds:
            self.slowest = Slow(outcome.seconds, case.name, case.label)

    def fail(self, report: Report) -> None:
        """Count a failure, keeping the shortest reproducer of its signature."""
        known = self.failures.get(report.failure.signature)
        if known is None:
            self.failures[report.failure.signature] = report
            return
        shorter = report if len(report.message) < len(known.message) else known
        self.failures[report.failure.signature] = replace(
            shorter,
            count=known.count + report.count,
            case=known.case,
            family=known.family,
            label=known.label,
        )

    def merge(self, other: Tally) -> None:
        """Add another tally's counts and failures to this one."""
        self.cases += other.cases
        self.statuses.update(other.statuses)
        self.families.update(other.families)
        self.refusals.update(other.refusals)
        for report in other.failures.values():
            self.fail(report)
        if other.slowest.seconds > self.slowest.seconds:
            self.slowest = other.slowest
        self.over_budget.extend(other.over_budget)


class Campaign:
    """Runs the cases of one seed, in ranges, in this process.

    :param families: the case families to draw from.
    :param budget: seconds one case may take.
    :param on_case: called with each case's index before it runs (and again for each shrink
        try), so a watchdog in another process can tell a hang from a long range.
    """

    def __init__(
        self,
        seed: int,
        *,
        families: tuple[str, ...] = tuple(FAMILIES),
        budget: float = BUDGET,
        on_case: Callable[[int], None] = lambda index: None,
    ) -> None:
        self.seed = seed
        self.families = families
        self.budget = budget
        self._on_case = on_case
        self._wire = Wire()
        #: Signatures already shrunk in this process: later hits are only counted.
        self._shrunk: set[str] = set()

    def case(self, index: int) -> Case:
        """Case ``index`` of this campaign's seed."""
        return make_case(self.seed, index, self._wire, self.families)

    def run(self, start: int, stop: int) -> Tally:
        """Run cases ``start`` to ``stop - 1`` against one app."""
        tally = Tally()
        with Target() as target:
            for index in range(start, stop):
                case = self.case(index)
                self._on_case(index)
                request = case.request()
                outcome = target.send(request)
                tally.add(case, outcome)
                if outcome.seconds > self.budget:
                    again = target.send(case.request())
                    if again.seconds > self.budget:
                        seconds = min(outcome.seconds, again.seconds)
                        tally.over_budget.append(Slow(seconds, case.name, case.label))
                failure = self.fault(case, request, outcome)
                if failure is not None:
                    tally.fail(self._report(case, failure, request))
        return tally

    def fault(self, case: Case, request: Request, outcome: Outcome) -> Failure | None:
        """What went wrong with a request: an internal error, or a reply WeChat cannot read.

        A handshake must be answered with its ``echostr``. A reply must come in the format of
        the push; outside the query family, whose mutations may change ``encrypt_type``, it must
        also be encrypted exactly when the push was. A retry is answered with the bytes of the
        first attempt, whatever its own mode (a retry in another mode gets them too, a finding
        of this fuzzer): for a retry, only whether WeChat can read the bytes counts.
        """
        if outcome.failure is not None or outcome.status != 200:
            return outcome.failure
        if request.method == "GET":
            found = handshake_problem(request.query, outcome.body)
        elif outcome.retry:
            found = problem(outcome.body, self._wire)
        else:
            encrypted = None if case.family == "query" else case.mode is not Mode.PLAINTEXT
            found = problem(outcome.body, self._wire, like=request.body, encrypted=encrypted)
        return None if found is None else Failure(UNREADABLE, "", found)

    def _report(self, case: Case, failure: Failure, request: Request) -> Report:
        message = case.message
        if failure.signature not in self._shrunk:
            self._shrunk.add(failure.signature)
            message, request = self.shrink(case, failure.signature, request)
        return Report(
            failure,
            1,
            case.name,
            case.family,
            case.label,
            case.mode.value,
            case.body_format.value,
            message,
            request,
        )

    def shrink(self, case: Case, signature: str, request: Request) -> tuple[bytes, Request]:
        """The shortest message found that, carried like ``case``'s, fails with ``signature``.

        Cuts pieces of half the message, then a quarter and so on down to single bytes, and
        keeps every cut after which the same failure recurs; stops after
        :data:`SHRINK_RUNS` tries.
        """
        best, tries = case.message, 0
        size = len(best) // 2
        while size >= 1 and tries < SHRINK_RUNS:
            at = 0
            while at < len(best) and tries < SHRINK_RUNS:
                candidate = best[:at] + best[at + size :]
                tries += 1
                carried = self._fails_with(case, candidate, signature)
                if carried is None:
                    at += size
                else:
                    best, request = candidate, carried
            size //= 2
        return best, request

    def _fails_with(self, case: Case, message: bytes, signature: str) -> Request | None:
        """The request carrying ``message`` if it fails with ``signature`` on a fresh app."""
        try:
            request = case.request(message)
        except Exception:  # a cut the carrier cannot carry (half a UTF-8 character...)
            return None
        self._on_case(case.index)
        with Target() as target:
            failure = self.fault(case, request, target.send(request))
        return request if failure is not None and failure.signature == signature else None
