"""WeChat's side of the wire, cheap enough for thousands of connections at once.

Raw HTTP/1.1 over ``asyncio.open_connection``: one connection per attempt, as WeChat makes
them, and an attempt that gets no answer within 5 s is given up and sent again (the same
bytes), three attempts at most. Times come from the event loop's monotonic clock.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass

#: WeChat waits this long for an answer, and sends the next attempt this long after the last.
WECHAT_TIMEOUT = 5.0
#: Attempts per push: the first and two retries.
ATTEMPTS = 3


@dataclass(frozen=True)
class Exchange:
    """One attempt: what came back and when."""

    #: When the attempt was started (or was due to start: open-loop load counts from then).
    started: float
    #: Seconds from ``started`` to the answer, the close, the error or the timeout.
    took: float
    #: The HTTP status; 0 when no answer came.
    status: int = 0
    body: bytes = b""
    #: "answer", or why none came: "closed" (the server closed the connection without an
    #: answer, a lapse), "timeout", "refused", "reset".
    outcome: str = "answer"

    @property
    def answered(self) -> bool:
        return self.outcome == "answer"


async def exchange(
    host: str,
    port: int,
    raw: bytes,
    *,
    timeout: float = WECHAT_TIMEOUT,
    since: float | None = None,
    tls: ssl.SSLContext | None = None,
) -> Exchange:
    """Send ``raw`` on a new connection and read the answer, for ``timeout`` seconds at most.

    :param since: the time to count from (default: now).
    :param tls: speak HTTPS with this context.
    """
    loop = asyncio.get_running_loop()
    started = loop.time() if since is None else since
    writer = None
    try:
        async with asyncio.timeout(max(0.0, started + timeout - loop.time())):
            reader, writer = await asyncio.open_connection(host, port, ssl=tls)
            writer.write(raw)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status, length = _parse_head(head)
            body = await (reader.readexactly(length) if length >= 0 else reader.read())
        return Exchange(started, loop.time() - started, status, body)
    except TimeoutError:
        return Exchange(started, loop.time() - started, outcome="timeout")
    except asyncio.IncompleteReadError:
        return Exchange(started, loop.time() - started, outcome="closed")
    except ConnectionRefusedError:
        return Exchange(started, loop.time() - started, outcome="refused")
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
        return Exchange(started, loop.time() - started, outcome="reset")
    finally:
        if writer is not None:
            writer.transport.abort()


async def converse(
    host: str, port: int, raw: bytes, *, tls: ssl.SSLContext | None = None
) -> list[Exchange]:
    """Send a push as WeChat does: again while no answer comes, 5 s apart, 3 attempts at most.

    Any HTTP answer ends the conversation, an error status included: WeChat retries only
    pushes it got no answer to.
    """
    loop = asyncio.get_running_loop()
    attempts: list[Exchange] = []
    while len(attempts) < ATTEMPTS:
        started = loop.time()
        attempt = await exchange(host, port, raw, since=started, tls=tls)
        attempts.append(attempt)
        if attempt.answered:
            break
        await asyncio.sleep(max(0.0, started + WECHAT_TIMEOUT - loop.time()))
    return attempts


def _parse_head(head: bytes) -> tuple[int, int]:
    """The status and Content-Length (-1 when absent) of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = -1
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, length
