"""A slow, LLM-style handler, and what the service does about WeChat's 5 seconds.

WeChat waits 5 s for an answer, then drops the connection and sends the same push again, three
attempts in all (about 15 s). The service answers every attempt by WX_DEADLINE (4.5 s) whatever
the handler does, and runs the handler once. What the user gets depends on WX_SLOW_STRATEGY:

* ``retry`` (default): attempts 1 and 2 lapse (the connection closes with no answer, which
  WeChat treats as a timeout) so the handler gets up to ~14 s; whichever retry finds the reply
  ready answers with it, as a normal passive reply. If it is still not ready at the last attempt,
  the service answers "success" and sends the reply later (below).
* ``customer_service``: the first attempt answers "success" at the deadline and the reply goes
  later. Prefer it when most answers take longer than ~14 s anyway, so nobody waits for retries.
* ``off``: "success" at the deadline, and a late reply is dropped.

"Later" means the customer-service API when WX_APPSECRET is set (48-hour window after the
user's message; "typing…" is shown meanwhile), otherwise the passive reply to the user's next
message. Set SLOW_LLM_SECONDS to play with the timing:

    SLOW_LLM_SECONDS=8 WX_HANDLERS=examples.slow_llm make run
    python -m app simulate --content "What is WeChat?"
"""

from __future__ import annotations

import os
import time

from app import Router
from app.wechat.messages import TextMessage

router = Router()


def think_seconds() -> float:
    """How long the pretend model thinks (read per call so tests can change it)."""
    return float(os.environ.get("SLOW_LLM_SECONDS", "8"))


@router.text
def ask_the_model(message: TextMessage) -> str:
    """Stands in for a network call to a language model; no network here."""
    time.sleep(think_seconds())
    return f"After some thought about '{message.content[:40]}': it depends."
