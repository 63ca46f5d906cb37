"""Every event WeChat documents (PROTOCOL.md §5, events): one frozen dataclass per ``Event``.

Events are most of the protocol's types and change on their own schedule (WeChat adds one
for each new feature), so they live apart from the user messages of :mod:`.messages`. Each
class registers itself on the :class:`.push.Event` base as it is defined; this module exposes
:func:`event_class`, the lookup :func:`.messages.parse_message` uses, so that importing the
lookup imports every event class with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .fields import integer, mapping, number, read, repeated, text
from .push import Event
from .push import event_class as event_class


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
        key = text(fields.get("EventKey"))
        scene = key.removeprefix("qrscene_") if key.startswith("qrscene_") else ""
        return {"scene": scene, **read(fields, text, "Ticket")}


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
        return {"scene": text(fields.get("EventKey")), **read(fields, text, "Ticket")}


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationEvent(Event):
    """PROTOCOL.md §5: ``LOCATION``, reported on entering the chat or every 5 s."""

    EVENT = "LOCATION"
    latitude: float | None = None
    longitude: float | None = None
    precision: float | None = None

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, number, "Latitude", "Longitude", "Precision")


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
        return read(fields, text, "MenuId")


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewMiniProgramEvent(Event):
    """PROTOCOL.md §5: ``view_miniprogram``, a menu opened a Mini Program page (``event_key``)."""

    EVENT = "view_miniprogram"
    menu_id: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "MenuId")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanCodeEvent(Event):
    """Base of the scan-code menu events, which carry ``ScanCodeInfo`` (PROTOCOL.md §5)."""

    #: ``qrcode``, ``barcode``, ...
    scan_type: str = ""
    scan_result: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(mapping(fields.get("ScanCodeInfo")), text, "ScanType", "ScanResult")


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
        info = mapping(fields.get("SendPicsInfo"))
        items = repeated(mapping(info.get("PicList")).get("item"))
        sums = tuple(text(item.get("PicMd5Sum")) for item in items)
        return {"pic_md5sums": sums, **read(info, integer, "Count")}


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
        info = mapping(fields.get("SendLocationInfo"))
        return {
            **read(info, number, "Location_X", "Location_Y"),
            **read(info, integer, "Scale"),
            **read(info, text, "Label", "Poiname"),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TemplateSendJobFinishEvent(Event):
    """PROTOCOL.md §5: ``TEMPLATESENDJOBFINISH``, the fate of one template message."""

    EVENT = "TEMPLATESENDJOBFINISH"
    #: ``MsgID`` the template send API returned.
    msg_id: int | None = None
    #: ``success``, ``failed:user block`` or ``failed: system failed``.
    status: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {**read(fields, integer, "MsgID"), **read(fields, text, "Status")}


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

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        counts = ("MsgID", "TotalCount", "FilterCount", "SentCount", "ErrorCount")
        nested = ("CopyrightCheckResult", "ArticleUrlResult")
        return {
            **read(fields, integer, *counts),
            **read(fields, text, "Status"),
            **read(fields, mapping, *nested),
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

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        info = mapping(fields.get("PublishEventInfo"))
        failed = info.get("fail_idx")
        numbers = (integer(value) for value in (failed if isinstance(failed, list) else [failed]))
        return {
            **read(info, text, "publish_id", "article_id"),
            **read(info, integer, "publish_status"),
            **read(info, mapping, "article_detail"),
            "fail_idx": tuple(number for number in numbers if number is not None),
        }


def _subscription_list(fields: Mapping[str, Any], wrapper: str) -> list[Mapping[str, Any]]:
    """A subscription event's ``List``: inside ``<wrapper>`` in XML, at the top in JSON."""
    inside = fields.get(wrapper)
    return repeated(mapping(inside if isinstance(inside, Mapping) else fields).get("List"))


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
            SubscribeMsgPopupEntry(**read(item, text, *names), **read(item, integer, "PopupScene"))
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
        return {"entries": tuple(SubscribeMsgChangeEntry(**read(i, text, *names)) for i in items)}


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscribeMsgSentEvent(Event):
    """PROTOCOL.md §5: ``subscribe_msg_sent_event``, the fate of subscription messages."""

    EVENT = "subscribe_msg_sent_event"
    entries: tuple[SubscribeMsgSentEntry, ...] = ()

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        items = _subscription_list(fields, "SubscribeMsgSentEvent")
        entries = tuple(
            SubscribeMsgSentEntry(
                **read(item, text, "TemplateId", "ErrorStatus"),
                **read(item, integer, "MsgID", "ErrorCode"),
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
        return read(fields, text, "KfAccount")


@dataclass(frozen=True, slots=True, kw_only=True)
class KfCloseSessionEvent(Event):
    """PROTOCOL.md §5: ``kf_close_session``, an agent closed the conversation."""

    EVENT = "kf_close_session"
    kf_account: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "KfAccount")


@dataclass(frozen=True, slots=True, kw_only=True)
class KfSwitchSessionEvent(Event):
    """PROTOCOL.md §5: ``kf_switch_session``, the conversation moved to another agent."""

    EVENT = "kf_switch_session"
    from_kf_account: str = ""
    to_kf_account: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "FromKfAccount", "ToKfAccount")


@dataclass(frozen=True, slots=True, kw_only=True)
class UserEnterTempSessionEvent(Event):
    """PROTOCOL.md §5: ``user_enter_tempsession``, a user opened Mini Program customer service."""

    EVENT = "user_enter_tempsession"
    #: The ``session-from`` of the customer-service button.
    session_from: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "SessionFrom")


@dataclass(frozen=True, slots=True, kw_only=True)
class DebugDemoEvent(Event):
    """PROTOCOL.md §5 and §9: ``debug_demo``, the Mini Program console's test push."""

    EVENT = "debug_demo"
    debug_str: str = ""

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return read(fields, text, "debug_str")
