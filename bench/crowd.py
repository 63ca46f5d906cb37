"""Many users at once, each played as WeChat plays a push, and what each of them got.

A crowd is a list of pushes with the second each is first sent at; every push becomes a
conversation (bench/wire.py: up to 3 attempts, 5 s apart, while no answer comes). All of them
run on one event loop, so a few thousand connections at once cost little.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench import report
from bench.pushes import builder
from bench.wire import Exchange, converse


@dataclass(frozen=True)
class Push:
    """One push of the crowd."""

    #: What kind of push it is ("slow", "quick", …), to report kinds apart.
    kind: str
    #: Seconds after the crowd starts that the first attempt is sent.
    at: float
    #: The request, as bytes on the wire.
    raw: bytes


@dataclass(frozen=True)
class Conversation:
    """A push and its attempts."""

    push: Push
    attempts: list[Exchange]

    @property
    def final(self) -> Exchange:
        return self.attempts[-1]

    def replied(self) -> bool:
        """Whether the last attempt got a passive reply (not "success", not an error)."""
        final = self.final
        if not final.answered or final.status != 200:
            return False
        return builder().read(final.status, final.body).reply is not None

    def waited(self) -> float:
        """Seconds from the first attempt to the last one's end."""
        return self.final.started + self.final.took - self.attempts[0].started


async def gather(
    host: str,
    pushes: Sequence[Push],
    *,
    tls: ssl.SSLContext | None = None,
    tick: Callable[[], None] | None = None,
) -> list[Conversation]:
    """Play every push's conversation; call ``tick`` every half second while they run."""
    address, port = host.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2

    async def one(push: Push) -> Conversation:
        await asyncio.sleep(max(0.0, start + push.at - loop.time()))
        return Conversation(push, await converse(address, int(port), push.raw, tls=tls))

    async def ticking() -> None:
        while tick is not None:
            tick()
            await asyncio.sleep(0.5)

    ticker = asyncio.create_task(ticking())
    try:
        return list(await asyncio.gather(*(one(push) for push in pushes)))
    finally:
        ticker.cancel()


def describe(conversations: Sequence[Conversation]) -> list[str]:
    """Lines on how a kind of push fared: replies by attempt, other endings, latency."""
    replied = [c for c in conversations if c.replied()]
    on_attempt = Counter(len(c.attempts) for c in replied)
    endings: Counter[str] = Counter()
    attempts: Counter[str] = Counter()
    for c in conversations:
        for number, attempt in enumerate(c.attempts, 1):
            attempts[f"{number}:{attempt.status if attempt.answered else attempt.outcome}"] += 1
        final = c.final
        if not final.answered:
            endings["no answer to any attempt"] += 1
        elif final.status != 200:
            endings[f"status {final.status}"] += 1
        elif final.body == b"success":
            endings["success"] += 1
    by_attempt = ", ".join(f"attempt {n}: {on_attempt[n]}" for n in (1, 2, 3))
    return [
        f"answered with a reply: {len(replied)}/{len(conversations)} ({by_attempt});"
        f" otherwise: {dict(endings) or 'none'}",
        f"time to the reply: {report.latencies([c.waited() for c in replied])}",
        f"attempts (number:outcome): {dict(sorted(attempts.items()))}",
    ]


class MemoryWatch:
    """The resident memory and threads of some processes: at the start and at their highest."""

    def __init__(self, read: Callable[[], dict[int, tuple[int, int]]]) -> None:
        self._read = read
        self.first = read()
        self.most: dict[int, tuple[int, int]] = dict(self.first)

    def __call__(self) -> None:
        for pid, (rss, threads) in self._read().items():
            old_rss, old_threads = self.most.get(pid, (0, 0))
            self.most[pid] = (max(rss, old_rss), max(threads, old_threads))

    def describe(self) -> str:
        parts = []
        for pid, (rss, threads) in sorted(self.most.items()):
            first_rss, first_threads = self.first.get(pid, (0, 0))
            parts.append(
                f"pid {pid}: RSS {first_rss / 1024:.0f} -> {rss / 1024:.0f} MiB,"
                f" threads {first_threads} -> {threads}"
            )
        return "; ".join(parts)
