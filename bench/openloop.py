"""Open-loop load at a fixed rate: pushes leave on schedule whether or not earlier ones are done.

wrk2 would do this; it is not installed, and wrk's own pacing (``delay()`` in Lua) only spaces
the requests of each connection, so a stalled server stalls the sender and its queueing never
shows (coordinated omission). Here push *i* is due at ``start + i / rate`` on a connection of
its own, and its latency counts from when it was due, so any lag of this sender counts against
the server rather than hiding its queueing: the figures are an upper bound. The sender reports
its own worst lag so that a client too slow for the rate can be seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from bench.wire import Exchange, exchange


@dataclass(frozen=True)
class OpenLoopResult:
    """What a fixed-rate run measured."""

    rate: float
    exchanges: list[Exchange]
    #: The sender's worst lag behind schedule, in seconds.
    lag: float

    @property
    def failed(self) -> int:
        """Pushes not answered 200 within the timeout."""
        return sum(not e.answered or e.status != 200 for e in self.exchanges)

    @property
    def seconds(self) -> list[float]:
        """Latencies of the answered pushes."""
        return [e.took for e in self.exchanges if e.answered]


async def _send_at_rate(
    host: str, port: int, requests: Sequence[bytes], rate: float, timeout: float
) -> OpenLoopResult:
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.1
    tasks = []
    lag = 0.0
    for n, raw in enumerate(requests):
        due = start + n / rate
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)
        lag = max(lag, loop.time() - due)
        tasks.append(asyncio.create_task(exchange(host, port, raw, timeout=timeout, since=due)))
    return OpenLoopResult(rate, list(await asyncio.gather(*tasks)), lag)


def send_at_rate(
    host: str, requests: Sequence[bytes], rate: float, *, timeout: float = 10.0
) -> OpenLoopResult:
    """Send ``requests`` to ``host`` ("address:port"), ``rate`` per second, on schedule."""
    address, port = host.rsplit(":", 1)
    return asyncio.run(_send_at_rate(address, int(port), requests, rate, timeout))
