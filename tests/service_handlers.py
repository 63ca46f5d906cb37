"""Handlers the HTTP and gunicorn tests load through WX_HANDLERS.

Every call is counted in this process and, when WX_TEST_CALLS names a file, appended to it as
one line, so tests can count runs across gunicorn worker processes.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections import Counter

from app import Article, NewsReply, Router, TextReply, TransferCustomerServiceReply
from app.lifecycle.clock import SYSTEM_CLOCK, Clock
from app.wechat.messages import Event, Message, TextMessage

router = Router()
#: What the ``sleep`` handler sleeps on.
clock: Clock = SYSTEM_CLOCK
calls: Counter[str] = Counter()
_lock = threading.Lock()


def record(message: Message) -> None:
    """Count one handler run for ``message``."""
    key = message.push_key
    identity = f"{key.kind}:{key.sender}:{key.detail}"
    with _lock:
        calls[identity] += 1
        path = os.environ.get("WX_TEST_CALLS")
        if path:
            with open(path, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()} {identity}\n")


@router.keyword("boom")
def boom(message: TextMessage) -> str:
    record(message)
    raise RuntimeError("handler exploded on purpose")


@router.keyword("wrong type")
def wrong_type(message: TextMessage) -> object:
    record(message)
    return 42


@router.keyword("three articles")
def three_articles(message: TextMessage) -> NewsReply:
    record(message)
    return NewsReply([Article("a"), Article("b"), Article("c")])


@router.keyword("transfer")
def transfer(message: TextMessage) -> TransferCustomerServiceReply:
    record(message)
    return TransferCustomerServiceReply("agent@test")


@router.regex(r"^sleep (\d+(?:\.\d+)?)$")
def sleep(message: TextMessage, match: re.Match[str]) -> TextReply:
    """A slow handler: sleeps on :data:`clock`, which tests of the slow path swap for the
    :class:`~app.testing.ManualClock` their app runs on."""
    record(message)
    clock.sleep(float(match.group(1)))
    return TextReply(f"slept {match.group(1)}")


@router.text
def echo(message: TextMessage) -> str:
    record(message)
    return f"echo: {message.content}"


@router.event("CLICK")
def click(message: Event) -> str:
    record(message)
    return f"clicked {message.event_key}"


@router.event("TEMPLATESENDJOBFINISH")
def template_finished(message: Event) -> str:
    record(message)
    return "nobody sees a reply to this event"


@router.event("CLICK", key="TRANSFER")
def transfer_event(message: Event) -> TransferCustomerServiceReply:
    record(message)
    return TransferCustomerServiceReply()


@router.event("CLICK", key="BOOM")
def boom_event(message: Event) -> str:
    record(message)
    raise RuntimeError("a bug in an event handler")


@router.keyword("die once")
def die_once(message: TextMessage) -> str:
    """Kill this worker process the first time, as the OOM killer would, then answer."""
    record(message)
    marker = os.environ.get("WX_TEST_CALLS", "") + ".died"
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return "answered after a worker died"


@router.event("wxa_media_check")
def media_checked(message: Event) -> None:
    record(message)
