"""An allow-list as middleware: only the listed users reach the handlers (a private beta).

ALLOWED_OPENIDS lists the OpenIDs, separated by commas; everyone else gets one polite answer
and no handler runs. Events are let through, so anyone can still follow and be greeted.

    ALLOWED_OPENIDS=oSimulatedUser000000000000000 WX_HANDLERS=examples.allow_list make run
    python -m app simulate --content hi
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from app import Router, ctx
from app.wechat.messages import Message, TextMessage

router = Router()

NOT_YET = "This account is in a private beta for now. Thank you for your interest!"


def allowed() -> frozenset[str]:
    """The OpenIDs let in (read per call, so a test or a restart can change them)."""
    return frozenset(
        filter(None, os.environ.get("ALLOWED_OPENIDS", "").replace(" ", "").split(","))
    )


@router.middleware
def allow_list(message: Message, call_next: Callable[[], Any]) -> Any:
    """Answer users not on the list at once; the handler never sees their messages."""
    if message.is_user_message and message.from_user_name not in allowed():
        ctx.log.info("not on the allow-list")
        return NOT_YET
    return call_next()


@router.text
def echo(message: TextMessage) -> str:
    return f"Welcome to the beta! You said: {message.content}"


@router.subscribe
def welcome(message: Message) -> str:
    return "Thanks for following! The chat opens to everyone soon."
