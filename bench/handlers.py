"""Handlers the load benchmarks run in wx-push (``WX_HANDLERS=bench.handlers``).

The content of a text picks the behaviour: ``slow …`` sleeps BENCH_SLEEP seconds (8), ``spin
…`` burns BENCH_SPIN seconds (3) of CPU, ``hang …`` blocks for good, ``quick …`` and anything
else answer at once. Every run appends one line to the file BENCH_RUNS names, opened with
O_APPEND, so runs can be counted across worker processes: a line is one ``write``, and
appends of a line that short are not interleaved.
"""

from __future__ import annotations

import os
import threading
import time

from app import Router
from app.wechat.messages import TextMessage

router = Router()
#: How long a ``hang`` handler waits: 11 days, on an Event nothing sets (a native one: the
#: service's gevent worker leaves threading alone).
_FOREVER = 1e6
_NEVER_SET = threading.Event()


def _count(message: TextMessage) -> None:
    path = os.environ.get("BENCH_RUNS")
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{message.from_user_name} {message.msg_id}\n".encode())
        finally:
            os.close(fd)


@router.regex(r"^slow")
def slow(message: TextMessage, match: object) -> str:
    _count(message)
    time.sleep(float(os.environ.get("BENCH_SLEEP", "8")))
    return f"slept: {message.content}"


@router.regex(r"^spin")
def spin(message: TextMessage, match: object) -> str:
    _count(message)
    seconds = float(os.environ.get("BENCH_SPIN", "3"))
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass
    return f"spun: {message.content}"


@router.regex(r"^hang")
def hang(message: TextMessage, match: object) -> str:
    _count(message)
    _NEVER_SET.wait(_FOREVER)
    return "never sent"


@router.text
def quick(message: TextMessage) -> str:
    _count(message)
    return f"quick: {message.content}"
