"""WeChat as the drill plays it: a push is sent, and sent again while it gets no answer.

Each attempt waits up to 5 s for an answer. With none (the connection closed, refused, reset or
timed out) the same push goes again, at most three attempts in all, each starting 5 s after
the previous one started; a 200 answer ends the push, and so does an error status, which is an
answer WeChat shows the user as an error (PROTOCOL.md §6).

A retry is the very same request, query and body byte for byte, as ``python -m app simulate``
sends it: WeChat documents sending "the same push again", and the ledger keys on FromUserName
and MsgId inside the decrypted body, which re-signing (a new nonce, timestamp and AES frame)
would not change. Byte-identical retries are also the ones a proxy or WeChat itself may
replay, so they are the case the service must get right.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from app.testing import PushBuilder
from app.wechat.errors import WeChatError
from app.wechat.replies import TextReply
from app.wechat.timing import ANSWER_WINDOW, ATTEMPTS
from config import Settings
from tests.servers import NO_ANSWER, request

#: The service's WX_DEADLINE in every drill: production's.
DEADLINE = 4.5
#: What each push asks of the drill's handlers (tests/drill_handlers.py), in turn: seconds the
#: handler sleeps, 0 for the quick echo. 6 s outlives one deadline (answered on attempt 2),
#: 12 s two (attempt 3), 16 s all three (delivered late through the customer-service API).
HANDLER_SECONDS = (0, 1.5, 0, 1, 0, 6, 0, 12, 0, 16)
#: Seconds a handler has for its reply to go out passively: the deadline of WeChat's last
#: attempt, which starts 10 s after the first.
PASSIVE_BUDGET = (ATTEMPTS - 1) * ANSWER_WINDOW + DEADLINE


@dataclass(frozen=True)
class Attempt:
    """One attempt as WeChat saw it."""

    number: int
    host: str
    #: Seconds since the drill's load started.
    at: float
    seconds: float
    #: "reply", "success", "closed", "refused", "timeout" or "error <what>".
    outcome: str
    #: The text of a passive reply.
    content: str | None = None

    @property
    def answered(self) -> bool:
        """Whether WeChat took this answer within its 5 s: a 200 it can read."""
        return self.outcome in ("reply", "success")


@dataclass
class Push:
    """One push of the drill and every attempt made for it."""

    tag: str
    handler_seconds: float
    builder: PushBuilder
    #: The signed request, built when the push is first sent, as WeChat builds it then.
    query: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def content(self) -> str:
        """The text the user sent: what tells the drill's handlers what to do."""
        if self.handler_seconds:
            return f"sleep {self.handler_seconds:g} {self.tag}"
        return self.tag

    def build(self) -> None:
        """Sign and encrypt the push now, with this moment's CreateTime and timestamp."""
        fields = self.builder.complete({"MsgType": "text", "Content": self.content})
        self.query, self.body = self.builder.build(fields)

    @property
    def user(self) -> str:
        return self.builder.user

    @property
    def reply(self) -> str:
        """The text the handler replies with: what the user is owed."""
        if self.handler_seconds:
            return f"slept {self.handler_seconds:g} {self.tag}"
        return f"echo {self.tag}"

    @property
    def answer(self) -> Attempt | None:
        """The attempt WeChat took an answer from, if any did."""
        return next((attempt for attempt in self.attempts if attempt.answered), None)


def make_pushes(settings: Settings, drill: str, count: int) -> list[Push]:
    """``count`` text pushes, each from a user of its own, cycling through HANDLER_SECONDS."""
    pushes = []
    for n, seconds in zip(range(count), itertools.cycle(HANDLER_SECONDS), strict=False):
        tag = f"{drill}-{n}"
        pushes.append(Push(tag, seconds, PushBuilder(settings, user=f"oDrill-{tag}")))
    return pushes


def attempt(push: Push, number: int, url: str, at: float) -> Attempt:
    """Send ``push`` once to ``url`` and classify what came back within ANSWER_WINDOW seconds."""
    started = time.monotonic()
    content = None
    try:
        status, body = request("POST", url + "/wx", push.query, push.body, timeout=ANSWER_WINDOW)
    except ConnectionRefusedError:
        outcome = "refused"
    except TimeoutError:
        outcome = "timeout"
    except (OSError, http.client.HTTPException):
        outcome = "closed"
    else:
        if status == NO_ANSWER:
            outcome = "closed"
        elif time.monotonic() - started > ANSWER_WINDOW:
            outcome = "timeout"
        elif status != 200:
            outcome = f"error {status}"
        else:
            try:
                result = push.builder.read(status, body)
            except (WeChatError, ValueError) as e:
                outcome = f"error {type(e).__name__}"
            else:
                outcome = "success" if result.success else "reply"
                if isinstance(result.reply, TextReply):
                    content = result.reply.content
    seconds = time.monotonic() - started
    return Attempt(number, url, at, seconds, outcome, content)


def play(push: Push, urls: Sequence[str], first: int, clock: float) -> None:
    """Send ``push`` as WeChat does; attempt n goes to ``urls[(first + n - 1) % len(urls)]``.

    :param clock: the monotonic time the load started, to date attempts.
    """
    push.build()
    for number in range(1, ATTEMPTS + 1):
        started = time.monotonic()
        url = urls[(first + number - 1) % len(urls)]
        result = attempt(push, number, url, started - clock)
        push.attempts.append(result)
        if result.answered or result.outcome.startswith("error"):
            return
        time.sleep(max(0.0, started + ANSWER_WINDOW - time.monotonic()))


class Load:
    """Pushes started one every ``interval`` seconds, each played on a thread of its own.

    With several URLs, pairs of consecutive pushes start on alternate hosts (pairs, so that
    quick and slow handlers run on each) and each push's attempts alternate between them.
    """

    def __init__(self, pushes: list[Push], urls: Sequence[str], interval: float) -> None:
        self.pushes = pushes
        self.duration = len(pushes) * interval
        self._urls = list(urls)
        self._interval = interval
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(pushes)))
        self._sender = threading.Thread(target=self._send, name="drill-load")
        self.started = 0.0

    def start(self) -> Load:
        self.started = time.monotonic()
        self._sender.start()
        return self

    def _send(self) -> None:
        for n, push in enumerate(self.pushes):
            time.sleep(max(0.0, self.started + n * self._interval - time.monotonic()))
            self._pool.submit(play, push, self._urls, n // 2, self.started)

    def wait_until(self, fraction: float) -> None:
        """Sleep until ``fraction`` of the load's duration has passed."""
        time.sleep(max(0.0, self.started + fraction * self.duration - time.monotonic()))

    def wait(self) -> None:
        """Wait until every push has made its last attempt."""
        self._sender.join()
        self._pool.shutdown(wait=True)
