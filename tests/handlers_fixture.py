"""Handlers that tests/test_router.py loads by name, the way WX_HANDLERS names them."""

from __future__ import annotations

from app.router import Router
from app.wechat.messages import TextMessage

router = Router()
other_router = Router()
NOT_A_ROUTER = 42


@router.text
def on_text(message: TextMessage) -> str:
    return f"echo: {message.content}"
