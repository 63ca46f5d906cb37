"""The handlers of the fuzzed app: every push is answered with what it carried.

Echoing sends hostile field values on through the rest of the pipeline: the reply models, the
XML and JSON renderers, the AES sealing of encrypted replies, the ledger that keeps the answer
and, for JSON pushes, late delivery. Each kind of reply is used for the message type whose
values fit it, so every renderer sees fuzzed text.
"""

from __future__ import annotations

from dataclasses import fields

from app import Article, NewsReply, Reply, Router, VideoReply
from app.wechat.messages import (
    Event,
    ImageMessage,
    LinkMessage,
    Message,
    TextMessage,
    VideoMessage,
    VoiceMessage,
)
from app.wechat.replies import ImageReply, TransferCustomerServiceReply, VoiceReply

router = Router()


@router.fallback
def echo(message: Message) -> Reply | str | None:
    """Answer with the push's own values: media by id, links as news, the rest as text."""
    if isinstance(message, TextMessage) and message.content == "transfer":
        return TransferCustomerServiceReply(message.from_user_name)
    if isinstance(message, ImageMessage) and message.media_id:
        return ImageReply(message.media_id)
    if isinstance(message, VoiceMessage) and message.media_id:
        return VoiceReply(message.media_id)
    if isinstance(message, VideoMessage) and message.media_id:
        return VideoReply(message.media_id, title=message.thumb_media_id, description="echo")
    if isinstance(message, LinkMessage):
        article = Article(message.title, message.description, url=message.url)
        return NewsReply([article])
    if isinstance(message, TextMessage):
        return message.content
    if isinstance(message, Event):
        return message.event_key or message.event
    return " ".join(_text_values(message))


def _text_values(message: Message) -> list[str]:
    """The message's text attributes, in declaration order."""
    values = (getattr(message, field.name) for field in fields(message))
    return [value for value in values if isinstance(value, str)]
