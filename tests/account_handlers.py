"""Handlers of the other accounts in the several-accounts tests: ``router`` for one, ``mini``
for another. Replies and recorded runs carry the router's mark, so a test can tell whose
handler ran; runs are appended to WX_TEST_CALLS as tests/service_handlers.py does."""

from __future__ import annotations

import os
import re
import time

from app import Router
from app.wechat.messages import Message, TextMessage


def _record(mark: str, message: Message) -> None:
    key = message.push_key
    path = os.environ.get("WX_TEST_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {mark}|{key.kind}:{key.sender}:{key.detail}\n")


def _handlers(mark: str) -> Router:
    router = Router()

    @router.regex(r"^sleep (\d+(?:\.\d+)?)$")
    def sleep(message: TextMessage, match: re.Match[str]) -> str:
        _record(mark, message)
        time.sleep(float(match.group(1)))
        return f"{mark} slept {match.group(1)}"

    @router.text
    def echo(message: TextMessage) -> str:
        _record(mark, message)
        return f"{mark}: {message.content}"

    return router


router = _handlers("shop")
mini = _handlers("mini")
