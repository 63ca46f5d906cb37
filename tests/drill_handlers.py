"""Handlers of the fault drill (bench/drill.py): a quick echo and a sleeper, every run counted.

A push's text is ``<tag>`` (echo) or ``sleep <seconds> <tag>``, the tag naming the push. Each
run appends ``start <pid> <tag>`` when it begins and ``end <pid> <tag>`` when its work is done
to the file WX_DRILL_RUNS names. Each line is one write(2) on a descriptor opened with
O_APPEND, so lines from every worker process of every gunicorn on the machine land whole and in
order however they race; a run cut short by a kill leaves a start without an end.
"""

from __future__ import annotations

import os
import re
import time

from app import Router
from app.wechat.messages import TextMessage

router = Router()


def note(event: str, tag: str) -> None:
    """Append one line for this run to the drill's runs file."""
    descriptor = os.open(os.environ["WX_DRILL_RUNS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(descriptor, f"{event} {os.getpid()} {tag}\n".encode())
    finally:
        os.close(descriptor)


@router.regex(r"^sleep (\d+(?:\.\d+)?) (\S+)$")
def sleep(message: TextMessage, match: re.Match[str]) -> str:
    seconds, tag = match.groups()
    note("start", tag)
    time.sleep(float(seconds))
    note("end", tag)
    return f"slept {seconds} {tag}"


@router.text
def echo(message: TextMessage) -> str:
    note("start", message.content)
    note("end", message.content)
    return f"echo {message.content}"
