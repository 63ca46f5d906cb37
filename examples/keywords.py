"""Keyword auto-reply: exact keywords, a regex with its match, a news card, a fallback.

WX_HANDLERS=examples.keywords make run
python -m app simulate --content help
"""

from __future__ import annotations

import re

from app import Article, NewsReply, Router, TextReply
from app.wechat.messages import TextMessage

router = Router()

HELP = "Send 'order 42' to track an order, or 'news' for today's article."


@router.keyword("help")
@router.keyword("帮助")
def help_text(message: TextMessage) -> str:
    """Exact keywords (surrounding spaces ignored); a str is a text reply."""
    return HELP


@router.regex(r"^order\s+(\d{1,10})$")
def track_order(message: TextMessage, match: re.Match[str]) -> TextReply:
    """A regex handler also gets the match."""
    return TextReply(f"Order {match.group(1)} is on its way.")


@router.keyword("news")
def news(message: TextMessage) -> NewsReply:
    """A reply to a user's message may carry one article (PROTOCOL.md §6)."""
    article = Article(
        "Today at wx-push",
        description="What changed this week",
        pic_url="https://example.com/cover.jpg",
        url="https://example.com/today",
    )
    return NewsReply([article])


@router.text
def anything_else(message: TextMessage) -> str:
    """Text no keyword or regex matched."""
    return f"Sorry, I don't know '{message.content[:30]}'. {HELP}"


@router.fallback
def not_text(message: object) -> None:
    """Everything else: None answers "success" and the user sees nothing."""
    return None
