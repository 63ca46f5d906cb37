"""Ranges of cases on worker processes, with a watchdog for cases that never finish.

A case that sends a regex into exponential backtracking does not come back, and nothing inside
its process can stop it: Python runs signal handlers only between bytecodes, and the match is
one long call. So cases run in worker processes (``spawn``, so that no thread of the caller is
copied half-way), each of which writes the index and start time of its current case to shared
memory. The parent kills a worker stuck on one case for longer than the hang limit, records
that case as a failure (kind ``Hang``), and hands the rest of its range to a fresh worker.

Each worker has a pipe of its own, so killing one never leaves a lock shared with the others
held, and the parent always knows which range each worker is running.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import SynchronizedArray

from .campaign import BUDGET, Campaign, Report, Tally
from .cases import FAMILIES
from .target import Failure

#: Seconds a single case may run before its worker is killed.
HANG = 20.0
_CONTEXT = multiprocessing.get_context("spawn")

Range = tuple[int, int]


@dataclass(frozen=True)
class Plan:
    """What to run: one seed, a number of cases, and how to spread them."""

    seed: int
    cases: int
    jobs: int = 1
    chunk: int = 5000
    first: int = 0
    families: tuple[str, ...] = tuple(FAMILIES)
    budget: float = BUDGET
    hang: float = HANG

    def ranges(self) -> list[Range]:
        """The ranges of case indexes handed to the workers one at a time."""
        stop = self.first + self.cases
        return [(at, min(at + self.chunk, stop)) for at in range(self.first, stop, self.chunk)]

    def campaign(self, on_case: Callable[[int], None] = lambda index: None) -> Campaign:
        """The campaign a worker runs its ranges with."""
        return Campaign(self.seed, families=self.families, budget=self.budget, on_case=on_case)


def _work(plan: Plan, connection: Connection, clock: SynchronizedArray[float]) -> None:
    """A worker: run each range it is sent, answer with its tally, until sent None."""

    def mark(index: int) -> None:
        clock[0] = index
        clock[1] = time.monotonic()

    campaign = plan.campaign(mark)
    while (task := connection.recv()) is not None:
        tally = campaign.run(*task)
        clock[1] = 0.0
        connection.send(tally)


class _Worker:
    """One worker process, its pipe, its clock, and the range it is running."""

    def __init__(self, plan: Plan) -> None:
        self.connection, theirs = _CONTEXT.Pipe()
        self.clock = _CONTEXT.Array("d", [0.0, 0.0], lock=False)
        self.process: SpawnProcess = _CONTEXT.Process(
            target=_work, args=(plan, theirs, self.clock), daemon=True
        )
        self.process.start()
        theirs.close()
        self.task: Range | None = None

    def give(self, task: Range) -> None:
        self.task = task
        self.connection.send(task)

    def lost(self, hang: float) -> tuple[str, int] | None:
        """``("Hang", index)`` when its case has run longer than ``hang`` seconds, ``("Crash",
        index)`` when the process died under it; None while all is well."""
        started = self.clock[1]
        if not started:
            return None
        if not self.process.is_alive():
            return f"Crash (exit code {self.process.exitcode})", int(self.clock[0])
        if time.monotonic() - started > hang:
            return "Hang", int(self.clock[0])
        return None

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.connection.close()

    def stop(self) -> None:
        self.connection.send(None)
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()


def run(plan: Plan, progress: Callable[[Tally], None] = lambda tally: None) -> Tally:
    """Run the plan on ``plan.jobs`` worker processes and return the merged tally.

    :param progress: called with the tally so far after each range.
    """
    total = Tally()
    todo: deque[Range] = deque(plan.ranges())
    workers = [_Worker(plan) for _ in range(min(plan.jobs, len(todo)) or 1)]
    try:
        for worker in workers:
            if todo:
                worker.give(todo.popleft())
        while any(worker.task for worker in workers):
            busy = {worker.connection: worker for worker in workers if worker.task}
            for connection in wait(list(busy), timeout=0.5):
                worker = busy[connection]  # type: ignore[index]
                try:
                    total.merge(worker.connection.recv())
                except EOFError:  # the worker died on its own: a crash of the interpreter
                    continue
                worker.task = None
                progress(total)
                if todo:
                    worker.give(todo.popleft())
            for at, worker in enumerate(workers):
                lost = worker.lost(plan.hang)
                if lost is None or worker.task is None:
                    continue
                kind, index = lost
                start, stop = worker.task
                worker.kill()
                total.merge(_lost_case(plan, index, kind))
                todo.extendleft(r for r in ((index + 1, stop), (start, index)) if r[0] < r[1])
                workers[at] = _Worker(plan)
                if todo:
                    workers[at].give(todo.popleft())
    finally:
        for worker in workers:
            if worker.process.is_alive():
                worker.stop()
    return total


def _lost_case(plan: Plan, index: int, kind: str) -> Tally:
    """A tally of the one case a worker was lost on, counted under status ``hang``/``crash``."""
    case = plan.campaign().case(index)
    status = kind.split()[0].lower()
    tally = Tally(cases=1)
    tally.statuses[status] += 1
    tally.families[f"{case.family} {status}"] += 1
    detail = f"no answer within {plan.hang:g} s" if status == "hang" else "the worker died"
    failure = Failure(kind, "", detail)
    report = Report(
        failure,
        1,
        case.name,
        case.family,
        case.label,
        case.mode.value,
        case.body_format.value,
        case.message,
        case.request(),
    )
    tally.fail(report)
    return tally
