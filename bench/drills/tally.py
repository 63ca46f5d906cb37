"""What happened to every push of a drill, counted from the outside.

Three witnesses, none of them the service's own word: the answers WeChat got (the attempts),
the customer-service messages the fake API received, and the runs file the handlers append to
(tests/drill_handlers.py).

* answered: some attempt got a 200 that WeChat could read, within 5 s;
* delivered: the reply reached the user, passively in that answer or late through the
  customer-service API; exactly once is the target, twice is a duplicate, never is lost;
* run twice: the handler ran more than once for the push. A run cut short by a kill (a start
  without an end) and run again by a retry is the one second run the design accepts
  (app/lifecycle/lease.py), so only runs that were not cut count.

The details add what the columns leave out: what each attempt got, replies delivered twice,
late deliveries of handlers quick enough for a passive reply, pushes that never reached a
running service.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.wechat.timing import ATTEMPTS

from .wechat import PASSIVE_BUDGET, Push


@dataclass
class Runs:
    """The handler runs in the runs file: per tag, the pids of starts and of ends."""

    starts: dict[str, list[int]] = field(default_factory=dict)
    ends: dict[str, list[int]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Runs:
        runs = cls()
        text = path.read_text() if path.exists() else ""
        # Read while handlers write: a line still being appended is left for the next read.
        for line in text[: text.rfind("\n") + 1].splitlines():
            event, pid, tag = line.split(" ", 2)
            book = runs.starts if event == "start" else runs.ends
            book.setdefault(tag, []).append(int(pid))
        return runs

    def unfinished(self) -> Counter[tuple[str, int]]:
        """(tag, pid) of every run that started and has not ended (yet, or ever)."""
        open_runs: Counter[tuple[str, int]] = Counter()
        for tag, pids in self.starts.items():
            open_runs.update((tag, pid) for pid in pids)
        for tag, pids in self.ends.items():
            open_runs.subtract((tag, pid) for pid in pids)
        return +open_runs

    def finished(self, tag: str) -> int:
        return len(self.ends.get(tag, []))

    def cut(self, tag: str) -> int:
        return len(self.starts.get(tag, [])) - self.finished(tag)


@dataclass
class Tally:
    """One drill's line of the table, and whether it met the target."""

    name: str
    pushes: int = 0
    answered: int = 0
    by_attempt: Counter[int] = field(default_factory=Counter)
    once: int = 0
    twice_delivered: int = 0
    run_twice: int = 0
    lost: int = 0
    worst: float = 0.0
    rerun_after_kill: int = 0
    never_reached: int = 0
    late: int = 0
    late_in_budget: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        """The target: every push answered within 5 s and delivered exactly once, none run
        twice."""
        return (
            self.answered == self.pushes
            and self.once == self.pushes
            and self.run_twice == 0
            and self.lost == 0
        )

    def line(self) -> str:
        by_attempt = " ".join(f"#{n}:{self.by_attempt[n]}" for n in range(1, ATTEMPTS + 1))
        return (
            f"{self.name:<18} {self.pushes:>6} {self.answered:>5} ({by_attempt:<16})"
            f" {self.once:>5} {self.run_twice:>5} {self.lost:>5} {self.worst:>7.2f} s"
            f"  {'ok' if self.met else 'MISSED'}"
        )

    def details(self) -> str:
        """What the columns leave out: duplicates, reruns, what the attempts got."""
        parts = [f"attempts {dict(sorted(self.outcomes.items()))}"]
        if self.twice_delivered:
            parts.append(f"delivered twice {self.twice_delivered}")
        if self.late:
            parts.append(
                f"delivered late {self.late} (handlers shorter than the {PASSIVE_BUDGET:g} s"
                f" a passive reply has: {self.late_in_budget})"
            )
        if self.never_reached:
            parts.append(f"never reached the service (every attempt refused) {self.never_reached}")
        if self.rerun_after_kill:
            parts.append(f"re-run after a kill {self.rerun_after_kill}")
        return "; ".join(parts + self.notes)


HEADER = (
    f"{'drill':<18} {'pushes':>6} {'answered <5 s (by attempt)':<29}"
    f" {'once':>5} {'twice':>5} {'lost':>5} {'worst':>9}"
)


def tally(
    name: str, pushes: Iterable[Push], runs: Runs, messages: Iterable[Mapping[str, Any]]
) -> Tally:
    """Count what happened to ``pushes``; ``messages`` are the customer-service messages the
    fake API received."""
    sent_late = Counter(
        (message.get("touser"), message.get("text", {}).get("content")) for message in messages
    )
    result = Tally(name)
    for push in pushes:
        result.pushes += 1
        answer = push.answer
        result.never_reached += all(a.outcome == "refused" for a in push.attempts)
        for attempt in push.attempts:
            result.outcomes[attempt.outcome] += 1
            result.worst = max(result.worst, attempt.seconds)
        if answer is not None:
            result.answered += 1
            result.by_attempt[answer.number] += 1
        passive = answer is not None and answer.content == push.reply
        late = sent_late[(push.user, push.reply)]
        delivered = int(passive) + late
        result.late += late > 0
        result.late_in_budget += late > 0 and push.handler_seconds < PASSIVE_BUDGET
        result.once += delivered == 1
        result.twice_delivered += delivered > 1
        result.lost += delivered == 0
        result.run_twice += runs.finished(push.tag) > 1
        result.rerun_after_kill += runs.cut(push.tag) > 0 and runs.finished(push.tag) > 0
    return result
