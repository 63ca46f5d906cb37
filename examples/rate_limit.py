"""A per-user rate limit as middleware, counted in the shared store: 5 messages a minute.

Middleware runs around every handler (``@router.middleware``); this one answers by itself,
without calling the handler, once a user has sent more than ``LIMIT`` messages in the current
minute. The count lives in the service's store (``ctx.store``), so every worker and host shares
it. It is made of "add if absent" alone: message n of a minute claims slot n, which exactly one
message can do, so no two messages get the same number and no count is lost. The n-th message
of a minute costs n store round trips, one over the limit ``LIMIT``.

Put ``rate_limit`` on your own router with ``router.add_middleware(rate_limit)``.

    WX_HANDLERS=examples.rate_limit make run
    python -m app simulate --content hi      # six times within a minute
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from app import Router, ctx
from app.wechat.messages import Message, TextMessage

router = Router()

#: Messages a user may send per window.
LIMIT = 5
#: The window, in seconds.
WINDOW = 60
TOO_MANY = "You are sending messages too fast; please wait a minute."


@router.middleware
def rate_limit(message: Message, call_next: Callable[[], Any]) -> Any:
    """Let a user's message through if it is one of their first ``LIMIT`` in this window."""
    if not message.is_user_message:
        return call_next()  # events (menu clicks, follows) are not limited
    window = int(time.time() // WINDOW)
    user = hashlib.sha256(message.from_user_name.encode()).hexdigest()
    key = f"app:ratelimit:{user}:{window}"
    for slot in range(1, LIMIT + 1):
        if ctx.store.add(f"{key}:{slot}", b"1", WINDOW * 2):
            return call_next()
    ctx.log.info("over the rate limit of %d messages in %d s", LIMIT, WINDOW)
    return TOO_MANY


@router.text
def echo(message: TextMessage) -> str:
    return f"You said: {message.content}"
