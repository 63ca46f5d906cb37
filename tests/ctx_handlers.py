"""Handlers that use ``ctx``: sessions, the API, async code, middleware; loaded by WX_HANDLERS.

``router`` has the handlers; ``layered``, ``guarded`` and ``tangled`` put middleware around
copies of some of them.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import current_app

from app import Router, TextReply, ctx
from app.wechat.messages import Message, TextMessage

router = Router()

#: What handlers on different threads share, made when the handlers load (after gevent's
#: patching, in a gunicorn worker): a lock, and a log handler with its own lock.
_shared = threading.Lock()
_log = logging.getLogger("tests.ctx_handlers.shared")
_log.addHandler(logging.StreamHandler(io.StringIO()))
_log.propagate = False


@router.keyword("context")
def context(message: TextMessage) -> str:
    return json.dumps(
        {
            "same_message": ctx.message is message,
            "mode": ctx.push.mode.value,
            "format": ctx.push.body_format.value,
            "content": ctx.push.fields["Content"],
            "appid": ctx.settings.appid,
            "app": current_app.name,
            "handler": ctx.handler,
        }
    )


@router.keyword("shared lock")
def shared_lock(message: TextMessage) -> str:
    """Hold a lock that handlers on other threads wait for, logging all the while."""
    with _shared:
        for n in range(50):
            _log.warning("holding the shared lock (%d)", n)
        time.sleep(0.1)
    return "held"


@router.keyword("log")
def log(message: TextMessage) -> str:
    ctx.log.info("hello from the handler")
    return "logged"


@router.keyword("api")
def api(message: TextMessage) -> str:
    ctx.api.send_text(message.from_user_name, "sent by the handler")
    return "sent"


@router.regex(r"^reach ?(\S*)$")
def reach(message: TextMessage, match: re.Match[str]) -> str:
    result = ctx.reachable(match.group(1) or None)
    return f"{bool(result)} {result.left} {result.reason}".strip()


@router.regex(r"^count ?(\d*(?:\.\d+)?)$")
def count(message: TextMessage, match: re.Match[str]) -> str:
    seen = ctx.session.get("count", 0)
    time.sleep(float(match.group(1) or 0))  # between the read and the write
    ctx.session["count"] = seen + 1
    return f"count {seen + 1}"


@router.keyword("peek")
def peek(message: TextMessage) -> str:
    return f"count is {ctx.session.get('count', 0)}"


@router.keyword("count then fail")
def count_then_fail(message: TextMessage) -> str:
    ctx.session["count"] = ctx.session.get("count", 0) + 100
    raise RuntimeError("after changing the session")


@router.keyword("unstorable")
def unstorable(message: TextMessage) -> str:
    ctx.session["when"] = object()
    return "kept an object"


@router.keyword("async context")
async def async_context(message: TextMessage) -> str:
    await asyncio.sleep(0.01)
    ctx.session["async"] = True
    return f"async {ctx.handler} {current_app.name}"


@router.regex(r"^async sleep (\d+(?:\.\d+)?)$")
async def async_sleep(message: TextMessage, match: re.Match[str]) -> TextReply:
    await asyncio.sleep(float(match.group(1)))
    return TextReply(f"slept {match.group(1)} asynchronously")


@router.keyword("async api")
async def async_api(message: TextMessage) -> str:
    await ctx.async_api.send_text(message.from_user_name, "sent by an async handler")
    return "sent"


@router.keyword("async fail")
async def async_fail(message: TextMessage) -> str:
    await asyncio.sleep(0)
    raise ValueError("an async handler failed")


@router.regex(r"^stall once (\S+)$")
def stall_once(message: TextMessage, match: re.Match[str]) -> str:
    """The first run, anywhere, writes its process id to the file named and never returns (its
    process is to be killed); a run after it answers at once."""
    marker = match.group(1)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return "ran again"
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    threading.Event().wait()
    return "never"


@router.regex(r"^long (\d+)( slowly)?$")
def long(message: TextMessage, match: re.Match[str]) -> str:
    """A text of about ``n`` bytes, in numbered lines; "slowly" takes 1.5 s over it."""
    if match.group(2):
        time.sleep(1.5)
    return long_text(int(match.group(1)))


def long_text(size: int) -> str:
    """Numbered lines of 3-byte characters, ``size`` bytes or a little more."""
    lines, total = [], 0
    while total < size:
        line = f"{len(lines) + 1:04d} " + "长" * 30
        lines.append(line)
        total += len(line.encode()) + 1
    return "\n".join(lines)


@router.fallback
def echo(message: Message) -> str:
    return f"echo: {getattr(message, 'content', message.msg_type)}"


# -- middleware ------------------------------------------------------------------------------

layered = Router()
layered.add_handler(echo)


@layered.middleware
def outer(message: Message, call_next: Callable[[], Any]) -> str:
    return f"outer[{call_next()}]"


@layered.middleware
async def middle(message: Message, call_next: Callable[[], Any]) -> str:
    return f"middle[{await call_next()}]"


@layered.middleware
def inner(message: Message, call_next: Callable[[], Any]) -> str:
    return f"inner[{call_next()} by {ctx.handler}]"


guarded = Router()
guarded.add_handler(echo)
guarded.add_handler(async_sleep, pattern=r"^async sleep (\d+(?:\.\d+)?)$")
guarded.add_handler(count, pattern=r"^count ?(\d*(?:\.\d+)?)$")


@guarded.middleware
def blacklist(message: Message, call_next: Callable[[], Any]) -> object:
    if message.from_user_name == "oBlocked":
        return "You are blocked."
    return call_next()


@guarded.middleware
def broken(message: Message, call_next: Callable[[], Any]) -> object:
    if getattr(message, "content", "") == "middleware boom":
        raise RuntimeError("a middleware failed")
    if getattr(message, "content", "") == "twice":
        call_next()
    return call_next()


tangled = Router()
tangled.add_handler(async_context, keyword="async context")
tangled.add_handler(echo)


@tangled.middleware
async def async_outer(message: Message, call_next: Callable[[], Any]) -> object:
    return await call_next()


@tangled.middleware
def plain_inside(message: Message, call_next: Callable[[], Any]) -> object:
    return call_next()
