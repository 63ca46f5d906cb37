"""Typed pushes: one frozen dataclass per message and event type of PROTOCOL.md §5.

Handlers get attributes with types (``message.content``, ``event.latitude``) instead of
lookups in a dict whose shape depends on XML versus JSON; :func:`parse_message` is the one
place that knows both shapes.

Names. An attribute is :func:`snake_case` of its wire field, so PROTOCOL.md and the code can
be grepped against each other (``FromUserName`` → ``from_user_name``, ``MsgID`` → ``msg_id``,
``HQMusicUrl`` → ``hq_music_url``, ``MediaId16K`` → ``media_id16k``, ``Location_X`` →
``location_x``). Repeated children become a tuple named in the plural (``pic_md5sums``), and
the ``List`` of a subscription event becomes ``entries``.

Values. ``CreateTime``, ``MsgId`` and the other ids WeChat documents as numbers are ``int``
(JSON may send numbers or strings; Python ints stay exact above 2**53), counts and codes are
``int``, coordinates ``float``; every other value, identifiers like ``MediaId``, ``MenuId`` and
``Ticket`` included, stays the ``str`` WeChat sent. ``raw`` keeps the whole push as received, so
unknown fields and the exact wire strings survive.

Strictness. Only what every push needs (``ToUserName``, ``FromUserName``, ``CreateTime``,
``MsgType``; ``MsgId`` of a known message; ``Event`` of an event) raises
:class:`MalformedBody`. A type's own field that is absent or unusable reads as empty: ``""``,
``None`` for a number, ``()`` for repeated values, ``{}`` for nested ones. WeChat adds and drops
fields over time, and a refused push is retried and then shown to the user as an error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from .errors import MalformedBody

#: Known message classes by lowercase ``MsgType``, filled by ``Message.__init_subclass__``.
_MESSAGES: dict[str, type[Message]] = {}
#: Known event classes by lowercase ``Event``, filled the same way.
_EVENTS: dict[str, type[Event]] = {}

_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")


def snake_case(wire_name: str) -> str:
    """The attribute name of a wire field.

    A word starts at a capital that follows a lowercase letter, or at the last capital of a
    run followed by a lowercase letter; digits and the letters after them stay in their word;
    an underscore on the wire stays. ``PicMd5Sum`` → ``pic_md5sum``, ``MsgID`` → ``msg_id``.
    """
    return _WORD_START.sub("_", wire_name).lower()


# -- reading wire values -----------------------------------------------------------------


def _text(value: object) -> str:
    """A text value: XML gives ``str``, JSON may give a number; anything else is absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _int(value: object) -> int | None:
    """An integer from a JSON number or a decimal string; None when absent or not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value)
    return None


def _float(value: object) -> float | None:
    """A finite decimal number from JSON or a string; None when absent or not one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)
    return None


def _mapping(value: object) -> Mapping[str, Any]:
    """A nested element; an empty mapping when absent or not nested."""
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> list[Mapping[str, Any]]:
    """Repeated nested elements as a list: one element gives a mapping, several a list."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    return []


def _read(
    source: Mapping[str, Any], convert: Callable[[object], object], *names: str
) -> dict[str, Any]:
    """Constructor arguments from the wire fields ``names``, each under its snake_case name."""
    return {snake_case(name): convert(source.get(name)) for name in names}


def _required_text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        found = "nothing" if value is None else f"{value!r:.40}"
        raise MalformedBody(f"push field {name} must be a non-empty string, got {found}")
    return value


def _required_int(fields: Mapping[str, Any], name: str, what: str) -> int:
    value = fields.get(name)
    number = _int(value)
    if number is None:
        found = "nothing" if value is None else f"{value!r:.40}"
        raise MalformedBody(f"{what} field {name} must be an integer, got {found}")
    return number


# -- the common part ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Base of every push: the common fields of PROTOCOL.md §5.

    Subclasses register by declaring ``MSG_TYPE`` (events: ``EVENT``) as a class variable, not
    as a class keyword: ``slots=True`` re-creates each class without its keywords, and reading
    ``cls.__dict__`` in ``__init_subclass__`` registers that final class.
    """

    #: The ``MsgType`` a subclass stands for; "" for bases.
    MSG_TYPE: ClassVar[str] = ""
    #: True for what a user sent (every push but events): it takes news of 1 article only and
    #: may be handed to customer service (PROTOCOL.md §6).
    is_user_message: ClassVar[bool] = True

    #: ``ToUserName``: the account's original ID (``gh_…``).
    to_user_name: str
    #: ``FromUserName``: the user's OpenID.
    from_user_name: str
    #: ``CreateTime``: Unix seconds.
    create_time: int
    #: ``MsgType`` as on the wire.
    msg_type: str
    #: Every field as received, known or not.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __init_subclass__(cls) -> None:
        event = cls.__dict__.get("EVENT")
        msg_type = cls.__dict__.get("MSG_TYPE")
        if event and issubclass(cls, Event):
            _EVENTS[event.lower()] = cls
        elif msg_type:
            _MESSAGES[msg_type.lower()] = cls

    @property
    def dedup_key(self) -> str:
        """The push's identity for the ledger (PROTOCOL.md §6); see the subclasses."""
        return f"push:{self.from_user_name}:{self.create_time}:{self.msg_type}"

    @classmethod
    def _kind_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor arguments of a family (messages, events), read from the wire."""
        return {}

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor arguments of this type only, read from the wire."""
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class UserMessage(Message):
    """Base of the normal messages a user sends (PROTOCOL.md §5, normal messages)."""

    #: ``MsgId``: 64-bit.
    msg_id: int
    #: ``MsgDataId``: the article the message was sent from, if it was.
    msg_data_id: int | None = None
    #: ``Idx``: that article's position in its post.
    idx: int | None = None

    @property
    def dedup_key(self) -> str:
        """``msg:<FromUserName>:<MsgId>``: one MsgId has been seen on two users' messages."""
        return f"msg:{self.from_user_name}:{self.msg_id}"

    @classmethod
    def _kind_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        msg_id = _required_int(fields, "MsgId", f"{cls.MSG_TYPE} message")
        return {"msg_id": msg_id, **_read(fields, _int, "MsgDataId", "Idx")}


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage(Message):
    """A ``MsgType`` this module does not know; ``raw`` has it all (PROTOCOL.md §5)."""

    msg_id: int | None = None
    msg_data_id: int | None = None
    idx: int | None = None

    @property
    def dedup_key(self) -> str:
        """As a known message's when it has a MsgId, else ``push:<From>:<Time>:<MsgType>``."""
        if self.msg_id is None:
            return f"push:{self.from_user_name}:{self.create_time}:{self.msg_type}"
        return f"msg:{self.from_user_name}:{self.msg_id}"

    @classmethod
    def _kind_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _int, "MsgId", "MsgDataId", "Idx")


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
        return _read(fields, _text, "Content", "bizmsgmenuid")


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageMessage(UserMessage):
    """PROTOCOL.md §5, normal messages: ``image``."""

    MSG_TYPE = "image"
    pic_url: str = ""
    media_id: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _text, "PicUrl", "MediaId")


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
        return _read(fields, _text, "MediaId", "Format", "Recognition", "MediaId16K")


@dataclass(frozen=True, slots=True, kw_only=True)
class VideoMessage(UserMessage):
    """PROTOCOL.md §5, normal messages: ``video``."""

    MSG_TYPE = "video"
    media_id: str = ""
    thumb_media_id: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _text, "MediaId", "ThumbMediaId")


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
            **_read(fields, _float, "Location_X", "Location_Y"),
            **_read(fields, _int, "Scale"),
            **_read(fields, _text, "Label"),
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
        return _read(fields, _text, "Title", "Description", "Url")


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
        return _read(fields, _text, "Title", "AppId", "PagePath", "ThumbUrl", "ThumbMediaId")


# -- events (PROTOCOL.md §5) -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(Message):
    """Base of every push with ``MsgType=event`` (PROTOCOL.md §5, events).

    Subclasses register under ``EVENT``, looked up in lowercase because WeChat sends
    ``subscribe`` but ``SCAN``, ``LOCATION`` and ``CLICK``.
    """

    #: The ``Event`` a subclass stands for, spelled as WeChat documents it.
    EVENT: ClassVar[str] = ""
    is_user_message: ClassVar[bool] = False

    #: ``Event`` as on the wire.
    event: str
    #: ``EventKey``; "" when absent.
    event_key: str = ""

    @property
    def dedup_key(self) -> str:
        """``event:<FromUserName>:<CreateTime>:<event lowercased>:<detail>``.

        WeChat's own rule (FromUserName + CreateTime) merges a click made in the same second as
        a subscribe, so the event and its EventKey (the detail) are added; job-finished events
        put their MsgID or publish_id before the EventKey, since several can finish for one
        user in one second.
        """
        event = self.event.lower()
        return f"event:{self.from_user_name}:{self.create_time}:{event}:{self._dedup_detail()}"

    def _dedup_detail(self) -> str:
        return self.event_key

    @classmethod
    def _kind_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {"event": _required_text(fields, "Event"), **_read(fields, _text, "EventKey")}


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """An ``Event`` this module does not know; ``raw`` has it all (PROTOCOL.md §5)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeEvent(Event):
    """PROTOCOL.md §5: ``subscribe``, a follow; through a parametric QR code it has a scene."""

    EVENT = "subscribe"
    #: ``EventKey`` without its ``qrscene_`` prefix; "" for a follow without a QR code.
    scene: str = ""
    #: ``Ticket`` of the QR code; "" without one.
    ticket: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        key = _text(fields.get("EventKey"))
        scene = key.removeprefix("qrscene_") if key.startswith("qrscene_") else ""
        return {"scene": scene, **_read(fields, _text, "Ticket")}


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsubscribeEvent(Event):
    """PROTOCOL.md §5: ``unsubscribe``; no reply reaches the user any more."""

    EVENT = "unsubscribe"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanEvent(Event):
    """PROTOCOL.md §5: ``SCAN``, a follower scanned a parametric QR code."""

    EVENT = "SCAN"
    #: The QR code's scene: ``EventKey`` itself (no prefix for followers).
    scene: str = ""
    ticket: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {"scene": _text(fields.get("EventKey")), **_read(fields, _text, "Ticket")}


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationEvent(Event):
    """PROTOCOL.md §5: ``LOCATION``, reported on entering the chat or every 5 s."""

    EVENT = "LOCATION"
    latitude: float | None = None
    longitude: float | None = None
    precision: float | None = None

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _float, "Latitude", "Longitude", "Precision")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClickEvent(Event):
    """PROTOCOL.md §5: ``CLICK`` on a menu button; ``event_key`` is the button's key."""

    EVENT = "CLICK"


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewEvent(Event):
    """PROTOCOL.md §5: ``VIEW``, a menu link opened; ``event_key`` is the URL."""

    EVENT = "VIEW"
    menu_id: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _text, "MenuId")


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewMiniProgramEvent(Event):
    """PROTOCOL.md §5: ``view_miniprogram``, a menu opened a Mini Program page (``event_key``)."""

    EVENT = "view_miniprogram"
    menu_id: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _text, "MenuId")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanCodeEvent(Event):
    """Base of the scan-code menu events, which carry ``ScanCodeInfo`` (PROTOCOL.md §5)."""

    #: ``qrcode``, ``barcode``, ...
    scan_type: str = ""
    scan_result: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(_mapping(fields.get("ScanCodeInfo")), _text, "ScanType", "ScanResult")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanCodePushEvent(ScanCodeEvent):
    """PROTOCOL.md §5: ``scancode_push``; WeChat acts on the scanned code itself."""

    EVENT = "scancode_push"


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanCodeWaitMsgEvent(ScanCodeEvent):
    """PROTOCOL.md §5: ``scancode_waitmsg``; the user waits for the account's answer."""

    EVENT = "scancode_waitmsg"


@dataclass(frozen=True, slots=True, kw_only=True)
class PicEvent(Event):
    """Base of the picture menu events, which carry ``SendPicsInfo`` (PROTOCOL.md §5)."""

    count: int | None = None
    #: ``PicMd5Sum`` of each picture, in order.
    pic_md5sums: tuple[str, ...] = ()

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        info = _mapping(fields.get("SendPicsInfo"))
        items = _items(_mapping(info.get("PicList")).get("item"))
        sums = tuple(_text(item.get("PicMd5Sum")) for item in items)
        return {"pic_md5sums": sums, **_read(info, _int, "Count")}


@dataclass(frozen=True, slots=True, kw_only=True)
class PicSysPhotoEvent(PicEvent):
    """PROTOCOL.md §5: ``pic_sysphoto``, pictures taken with the camera."""

    EVENT = "pic_sysphoto"


@dataclass(frozen=True, slots=True, kw_only=True)
class PicPhotoOrAlbumEvent(PicEvent):
    """PROTOCOL.md §5: ``pic_photo_or_album``, from the camera or the album."""

    EVENT = "pic_photo_or_album"


@dataclass(frozen=True, slots=True, kw_only=True)
class PicWeixinEvent(PicEvent):
    """PROTOCOL.md §5: ``pic_weixin``, pictures from the WeChat album."""

    EVENT = "pic_weixin"


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationSelectEvent(Event):
    """PROTOCOL.md §5: ``location_select``, a location picked from a menu button."""

    EVENT = "location_select"
    location_x: float | None = None
    location_y: float | None = None
    scale: int | None = None
    label: str = ""
    poiname: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        info = _mapping(fields.get("SendLocationInfo"))
        return {
            **_read(info, _float, "Location_X", "Location_Y"),
            **_read(info, _int, "Scale"),
            **_read(info, _text, "Label", "Poiname"),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateSendJobFinishEvent(Event):
    """PROTOCOL.md §5: ``TEMPLATESENDJOBFINISH``, the fate of one template message."""

    EVENT = "TEMPLATESENDJOBFINISH"
    #: ``MsgID`` the template send API returned.
    msg_id: int | None = None
    #: ``success``, ``failed:user block`` or ``failed: system failed``.
    status: str = ""

    def _dedup_detail(self) -> str:
        return f"{self.msg_id}:{self.event_key}"

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {**_read(fields, _int, "MsgID"), **_read(fields, _text, "Status")}


@dataclass(frozen=True, slots=True, kw_only=True)
class MassSendJobFinishEvent(Event):
    """PROTOCOL.md §5: ``MASSSENDJOBFINISH``, the report of a mass send."""

    EVENT = "MASSSENDJOBFINISH"
    msg_id: int | None = None
    status: str = ""
    total_count: int | None = None
    filter_count: int | None = None
    sent_count: int | None = None
    error_count: int | None = None
    copyright_check_result: Mapping[str, Any] = field(default_factory=dict)
    article_url_result: Mapping[str, Any] = field(default_factory=dict)

    def _dedup_detail(self) -> str:
        return f"{self.msg_id}:{self.event_key}"

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        counts = ("MsgID", "TotalCount", "FilterCount", "SentCount", "ErrorCount")
        nested = ("CopyrightCheckResult", "ArticleUrlResult")
        return {
            **_read(fields, _int, *counts),
            **_read(fields, _text, "Status"),
            **_read(fields, _mapping, *nested),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishJobFinishEvent(Event):
    """PROTOCOL.md §5: ``PUBLISHJOBFINISH``, the ``PublishEventInfo`` of a publish job."""

    EVENT = "PUBLISHJOBFINISH"
    publish_id: str = ""
    #: 0 published; other values mean publishing or failed.
    publish_status: int | None = None
    article_id: str = ""
    #: As received: ``count`` and ``item`` (``idx``, ``article_url``).
    article_detail: Mapping[str, Any] = field(default_factory=dict)
    #: Positions of the articles that failed, if any did.
    fail_idx: tuple[int, ...] = ()

    def _dedup_detail(self) -> str:
        return f"{self.publish_id}:{self.event_key}"

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        info = _mapping(fields.get("PublishEventInfo"))
        failed = info.get("fail_idx")
        numbers = (_int(value) for value in (failed if isinstance(failed, list) else [failed]))
        return {
            **_read(info, _text, "publish_id", "article_id"),
            **_read(info, _int, "publish_status"),
            **_read(info, _mapping, "article_detail"),
            "fail_idx": tuple(number for number in numbers if number is not None),
        }


def _subscription_list(fields: Mapping[str, Any], wrapper: str) -> list[Mapping[str, Any]]:
    """A subscription event's ``List``: inside ``<wrapper>`` in XML, at the top in JSON."""
    inside = fields.get(wrapper)
    return _items(_mapping(inside if isinstance(inside, Mapping) else fields).get("List"))


@dataclass(frozen=True, slots=True)
class SubscribeMsgPopupEntry:
    """One template of a ``subscribe_msg_popup_event``."""

    template_id: str
    #: ``accept`` or ``reject``.
    subscribe_status_string: str
    #: Where the popup was: 0 Mini Program page, 1 H5 page, 2 message; None if absent.
    popup_scene: int | None


@dataclass(frozen=True, slots=True)
class SubscribeMsgChangeEntry:
    """One template of a ``subscribe_msg_change_event``."""

    template_id: str
    subscribe_status_string: str


@dataclass(frozen=True, slots=True)
class SubscribeMsgSentEntry:
    """One message of a ``subscribe_msg_sent_event``."""

    template_id: str
    msg_id: int | None
    #: 0 on success.
    error_code: int | None
    error_status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeMsgPopupEvent(Event):
    """PROTOCOL.md §5: ``subscribe_msg_popup_event``, the user answered a subscription popup."""

    EVENT = "subscribe_msg_popup_event"
    entries: tuple[SubscribeMsgPopupEntry, ...] = ()

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        items = _subscription_list(fields, "SubscribeMsgPopupEvent")
        names = ("TemplateId", "SubscribeStatusString")
        entries = tuple(
            SubscribeMsgPopupEntry(**_read(item, _text, *names), **_read(item, _int, "PopupScene"))
            for item in items
        )
        return {"entries": entries}


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeMsgChangeEvent(Event):
    """PROTOCOL.md §5: ``subscribe_msg_change_event``, subscriptions changed in settings."""

    EVENT = "subscribe_msg_change_event"
    entries: tuple[SubscribeMsgChangeEntry, ...] = ()

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        items = _subscription_list(fields, "SubscribeMsgChangeEvent")
        names = ("TemplateId", "SubscribeStatusString")
        return {"entries": tuple(SubscribeMsgChangeEntry(**_read(i, _text, *names)) for i in items)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeMsgSentEvent(Event):
    """PROTOCOL.md §5: ``subscribe_msg_sent_event``, the fate of subscription messages."""

    EVENT = "subscribe_msg_sent_event"
    entries: tuple[SubscribeMsgSentEntry, ...] = ()

    def _dedup_detail(self) -> str:
        return ",".join(str(entry.msg_id) for entry in self.entries) + f":{self.event_key}"

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        items = _subscription_list(fields, "SubscribeMsgSentEvent")
        entries = tuple(
            SubscribeMsgSentEntry(
                **_read(item, _text, "TemplateId", "ErrorStatus"),
                **_read(item, _int, "MsgID", "ErrorCode"),
            )
            for item in items
        )
        return {"entries": entries}


@dataclass(frozen=True, slots=True, kw_only=True)
class KfCreateSessionEvent(Event):
    """PROTOCOL.md §5: ``kf_create_session``, an agent took the conversation."""

    EVENT = "kf_create_session"
    kf_account: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _text, "KfAccount")


@dataclass(frozen=True, slots=True, kw_only=True)
class KfCloseSessionEvent(Event):
    """PROTOCOL.md §5: ``kf_close_session``, an agent closed the conversation."""

    EVENT = "kf_close_session"
    kf_account: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _text, "KfAccount")


@dataclass(frozen=True, slots=True, kw_only=True)
class KfSwitchSessionEvent(Event):
    """PROTOCOL.md §5: ``kf_switch_session``, the conversation moved to another agent."""

    EVENT = "kf_switch_session"
    from_kf_account: str = ""
    to_kf_account: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _text, "FromKfAccount", "ToKfAccount")


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEnterTempSessionEvent(Event):
    """PROTOCOL.md §5: ``user_enter_tempsession``, a user opened Mini Program customer service."""

    EVENT = "user_enter_tempsession"
    #: The ``session-from`` of the customer-service button.
    session_from: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _text, "SessionFrom")


@dataclass(frozen=True, slots=True, kw_only=True)
class DebugDemoEvent(Event):
    """PROTOCOL.md §5 and §9: ``debug_demo``, the Mini Program console's test push."""

    EVENT = "debug_demo"
    debug_str: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return _read(fields, _text, "debug_str")


# -- parsing -----------------------------------------------------------------------------


def parse_message(fields: Mapping[str, Any]) -> Message:
    """Turn a push's fields, from XML or JSON, into the class for its type.

    Unknown types give :class:`UnknownMessage` or :class:`UnknownEvent` and unknown fields stay
    in ``raw``; neither is an error, because WeChat adds both over time.

    :param fields: the push as the codec gives it (the shapes of PROTOCOL.md §5).
    :raises MalformedBody: ``ToUserName``, ``FromUserName``, ``MsgType`` or (for events)
        ``Event`` is not a non-empty string, or ``CreateTime`` or (for known messages)
        ``MsgId`` is not an integer.
    """
    common: dict[str, Any] = {
        "to_user_name": _required_text(fields, "ToUserName"),
        "from_user_name": _required_text(fields, "FromUserName"),
        "create_time": _required_int(fields, "CreateTime", "push"),
        "msg_type": _required_text(fields, "MsgType"),
        "raw": MappingProxyType(dict(fields)),
    }
    cls: type[Message]
    if common["msg_type"].lower() == "event":
        cls = _EVENTS.get(_required_text(fields, "Event").lower(), UnknownEvent)
    else:
        cls = _MESSAGES.get(common["msg_type"].lower(), UnknownMessage)
    return cls(**common, **cls._kind_fields(fields), **cls._own_fields(fields))
