"""Typed pushes: the normal messages a user sends (PROTOCOL.md §5), and :func:`parse_message`.

Handlers get attributes with types (``message.content``, ``event.latitude``) instead of
lookups in a dict whose shape depends on XML versus JSON; :func:`parse_message` is the one
place that knows both shapes. It picks the class of a push among the user messages defined
here and the events of :mod:`.events`; the bases and the classes for unknown types are in
:mod:`.push`, and how fields are named and read (names, values, strictness) in :mod:`.fields`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .events import event_class
from .fields import integer, number, read, required_int, required_text, text
from .push import Event as Event
from .push import Message as Message
from .push import UnknownEvent as UnknownEvent
from .push import UnknownMessage as UnknownMessage
from .push import message_class, message_id

# -- the common part of user messages ----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class UserMessage(Message):
    """Base of the normal messages a user sends (PROTOCOL.md §5, normal messages)."""

    #: ``MsgId`` (or ``MsgID``): a 64-bit integer, or a string id kept as WeChat sent it
    #: (``49d72d67b16d115e7935ac386f2f0fa3_1555684067``); None in the rare push without one,
    #: which is then told apart from others by its content (:attr:`push_key`).
    msg_id: int | str | None = None
    #: ``MsgDataId``: the article the message was sent from, if it was.
    msg_data_id: int | None = None
    #: ``Idx``: that article's position in its post.
    idx: int | None = None

    @classmethod
    def _kind_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {"msg_id": message_id(fields), **read(fields, integer, "MsgDataId", "Idx")}


# -- normal messages (PROTOCOL.md §5) ----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TextMessage(UserMessage):
    """PROTOCOL.md §5, normal messages: ``text``."""

    MSG_TYPE = "text"
    content: str = ""
    #: Set when the user tapped an option of a msgmenu message, else "".
    bizmsgmenuid: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "Content", "bizmsgmenuid")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageMessage(UserMessage):
    """PROTOCOL.md §5, normal messages: ``image``."""

    MSG_TYPE = "image"
    pic_url: str = ""
    media_id: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "PicUrl", "MediaId")


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceMessage(UserMessage):
    """PROTOCOL.md §5, normal messages: ``voice``."""

    MSG_TYPE = "voice"
    media_id: str = ""
    #: ``amr`` or ``speex``.
    format: str = ""
    #: Speech-to-text result when the account enabled it, else "".
    recognition: str = ""
    media_id16k: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "MediaId", "Format", "Recognition", "MediaId16K")


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoMessage(UserMessage):
    """PROTOCOL.md §5, normal messages: ``video``."""

    MSG_TYPE = "video"
    media_id: str = ""
    thumb_media_id: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "MediaId", "ThumbMediaId")


@dataclass(frozen=True, slots=True, kw_only=True)
class ShortVideoMessage(VideoMessage):
    """PROTOCOL.md §5, normal messages: ``shortvideo``, a kind of video with the same fields."""

    MSG_TYPE = "shortvideo"


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationMessage(UserMessage):
    """PROTOCOL.md §5, normal messages: ``location``; ``raw`` keeps the exact wire strings."""

    MSG_TYPE = "location"
    #: Latitude.
    location_x: float | None = None
    #: Longitude.
    location_y: float | None = None
    #: Map zoom level.
    scale: int | None = None
    label: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **read(fields, number, "Location_X", "Location_Y"),
            **read(fields, integer, "Scale"),
            **read(fields, text, "Label"),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkMessage(UserMessage):
    """PROTOCOL.md §5, normal messages: ``link``."""

    MSG_TYPE = "link"
    title: str = ""
    description: str = ""
    url: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "Title", "Description", "Url")


@dataclass(frozen=True, slots=True, kw_only=True)
class MiniProgramPageMessage(UserMessage):
    """PROTOCOL.md §5, normal messages: ``miniprogrampage`` (Mini Program customer service)."""

    MSG_TYPE = "miniprogrampage"
    title: str = ""
    app_id: str = ""
    page_path: str = ""
    thumb_url: str = ""
    thumb_media_id: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "Title", "AppId", "PagePath", "ThumbUrl", "ThumbMediaId")


# -- parsing -----------------------------------------------------------------------------


def parse_message(fields: Mapping[str, Any]) -> Message:
    """Turn a push's fields, from XML or JSON, into the class for its type.

    Unknown types give :class:`UnknownMessage` or :class:`UnknownEvent` and unknown fields stay
    in ``raw``; neither is an error, because WeChat adds both over time.

    :param fields: the push as the codec gives it (the shapes of PROTOCOL.md §5).
    :raises MalformedBody: ``ToUserName``, ``FromUserName``, ``MsgType`` or (for events)
        ``Event`` is not 1-128 printable characters, or ``CreateTime`` is not an integer.
    """
    common: dict[str, Any] = {
        "to_user_name": required_text(fields, "ToUserName"),
        "from_user_name": required_text(fields, "FromUserName"),
        "create_time": required_int(fields, "CreateTime", "push"),
        "msg_type": required_text(fields, "MsgType"),
        "raw": MappingProxyType(dict(fields)),
    }
    cls: type[Message]
    if common["msg_type"].lower() == "event":
        cls = event_class(required_text(fields, "Event"))
    else:
        cls = message_class(common["msg_type"])
    return cls(**common, **cls._kind_fields(fields), **cls._own_fields(fields))
