"""The local stand-in for the console's debugging tool: pushes of every type, over real HTTP.

``flask wx simulate`` builds a push the way WeChat does (fields from :data:`SAMPLES`, signed and
encrypted by :class:`~app.testing.PushBuilder`), sends it to any URL, retries it like WeChat when
an attempt gets no answer, and reads each answer the way WeChat would.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..testing import PushBuilder, PushResult

#: Realistic fields for every push type of PROTOCOL.md §5, keyed by MsgType or event name.
SAMPLES: dict[str, dict[str, Any]] = {
    "text": {"MsgType": "text", "Content": "你好"},
    "image": {"MsgType": "image", "PicUrl": "http://mmbiz.qpic.cn/sim.jpg", "MediaId": "MEDIA_IMG"},
    "voice": {"MsgType": "voice", "MediaId": "MEDIA_VOICE", "Format": "amr", "Recognition": "你好"},
    "video": {"MsgType": "video", "MediaId": "MEDIA_VIDEO", "ThumbMediaId": "MEDIA_THUMB"},
    "shortvideo": {"MsgType": "shortvideo", "MediaId": "MEDIA_VIDEO", "ThumbMediaId": "THUMB"},
    "location": {
        "MsgType": "location",
        "Location_X": "23.134521",
        "Location_Y": "113.358803",
        "Scale": "20",
        "Label": "广州市海珠区",
    },
    "link": {
        "MsgType": "link",
        "Title": "WeChat push",
        "Description": "A link the user shared",
        "Url": "https://example.com/",
    },
    "miniprogrampage": {
        "MsgType": "miniprogrampage",
        "Title": "Mini Program card",
        "AppId": "wx0123456789abcdef",
        "PagePath": "pages/index/index",
        "ThumbUrl": "http://mmbiz.qpic.cn/thumb.jpg",
        "ThumbMediaId": "THUMB",
    },
    "subscribe": {"Event": "subscribe"},
    "unsubscribe": {"Event": "unsubscribe"},
    "SCAN": {"Event": "SCAN", "EventKey": "123", "Ticket": "gQSimTicket"},
    "LOCATION": {
        "Event": "LOCATION",
        "Latitude": "23.137466",
        "Longitude": "113.352425",
        "Precision": "119.385040",
    },
    "CLICK": {"Event": "CLICK", "EventKey": "MENU_KEY"},
    "VIEW": {"Event": "VIEW", "EventKey": "https://example.com/", "MenuId": "1"},
    "view_miniprogram": {"Event": "view_miniprogram", "EventKey": "pages/index", "MenuId": "1"},
    "scancode_push": {
        "Event": "scancode_push",
        "EventKey": "SCAN_KEY",
        "ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "https://example.com/qr"},
    },
    "scancode_waitmsg": {
        "Event": "scancode_waitmsg",
        "EventKey": "SCAN_KEY",
        "ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "https://example.com/qr"},
    },
    "pic_sysphoto": {
        "Event": "pic_sysphoto",
        "EventKey": "PIC_KEY",
        "SendPicsInfo": {
            "Count": "1",
            "PicList": {"item": {"PicMd5Sum": "1b5f7c23b5bf75682a53e7b6d163e185"}},
        },
    },
    "pic_photo_or_album": {
        "Event": "pic_photo_or_album",
        "EventKey": "PIC_KEY",
        "SendPicsInfo": {
            "Count": "1",
            "PicList": {"item": {"PicMd5Sum": "5a75aaca956d97be686719218f275c6b"}},
        },
    },
    "pic_weixin": {
        "Event": "pic_weixin",
        "EventKey": "PIC_KEY",
        "SendPicsInfo": {
            "Count": "1",
            "PicList": {"item": {"PicMd5Sum": "5a75aaca956d97be686719218f275c6b"}},
        },
    },
    "location_select": {
        "Event": "location_select",
        "EventKey": "LOC_KEY",
        "SendLocationInfo": {
            "Location_X": "23",
            "Location_Y": "113",
            "Scale": "15",
            "Label": "广州市海珠区",
            "Poiname": "",
        },
    },
    "TEMPLATESENDJOBFINISH": {
        "Event": "TEMPLATESENDJOBFINISH",
        "MsgID": "200163836",
        "Status": "success",
    },
    "MASSSENDJOBFINISH": {
        "Event": "MASSSENDJOBFINISH",
        "MsgID": "1000001625",
        "Status": "sendsuccess",
        "TotalCount": "100",
        "FilterCount": "80",
        "SentCount": "75",
        "ErrorCount": "5",
    },
    "PUBLISHJOBFINISH": {
        "Event": "PUBLISHJOBFINISH",
        "PublishEventInfo": {
            "publish_id": "2247503051",
            "publish_status": "0",
            "article_id": "b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvy",
            "article_detail": {
                "count": "1",
                "item": {"idx": "1", "article_url": "https://mp.weixin.qq.com/s/sim"},
            },
        },
    },
    "subscribe_msg_popup_event": {
        "Event": "subscribe_msg_popup_event",
        "SubscribeMsgPopupEvent": {
            "List": {
                "TemplateId": "TEMPLATE_1",
                "SubscribeStatusString": "accept",
                "PopupScene": "2",
            }
        },
    },
    "subscribe_msg_change_event": {
        "Event": "subscribe_msg_change_event",
        "SubscribeMsgChangeEvent": {
            "List": {"TemplateId": "TEMPLATE_1", "SubscribeStatusString": "reject"}
        },
    },
    "subscribe_msg_sent_event": {
        "Event": "subscribe_msg_sent_event",
        "SubscribeMsgSentEvent": {
            "List": {
                "TemplateId": "TEMPLATE_1",
                "MsgID": "1700827132819554304",
                "ErrorCode": "0",
                "ErrorStatus": "success",
            }
        },
    },
    "kf_create_session": {"Event": "kf_create_session", "KfAccount": "agent@test"},
    "kf_close_session": {"Event": "kf_close_session", "KfAccount": "agent@test"},
    "kf_switch_session": {
        "Event": "kf_switch_session",
        "FromKfAccount": "agent1@test",
        "ToKfAccount": "agent2@test",
    },
    "user_enter_tempsession": {"Event": "user_enter_tempsession", "SessionFrom": "sim"},
    "debug_demo": {"Event": "debug_demo", "debug_str": "hello world"},
}

#: WeChat gives an attempt 5 seconds before it tries again.
WECHAT_RETRY_INTERVAL = 5.0


def push_fields(kind: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a push of ``kind`` (a MsgType or an event name), with ``overrides``.

    :raises KeyError: ``kind`` is not in :data:`SAMPLES`.
    """
    sample = SAMPLES[kind]
    fields = dict(sample) if "MsgType" in sample else {"MsgType": "event", **sample}
    fields.update(overrides)
    return fields


@dataclass(frozen=True)
class Attempt:
    """One delivery of a push and what came back."""

    number: int
    seconds: float
    #: None when the server closed the connection without answering (a lapse).
    result: PushResult | None


def connect(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    """A fresh connection to ``url``'s host, as WeChat opens one per request, and its path."""
    parts = urllib.parse.urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    return connection, parts.path or "/"


def send(
    builder: PushBuilder,
    url: str,
    query: Mapping[str, str],
    body: bytes,
    *,
    timeout: float = WECHAT_RETRY_INTERVAL,
) -> tuple[PushResult | None, float]:
    """POST one push like WeChat: a fresh connection, given up after ``timeout`` seconds.

    :return: the answer read as WeChat would (None when there was none) and the seconds taken.
    :raises OSError: the server could not be reached at all.
    """
    connection, path = connect(url, timeout)
    target = path + "?" + urllib.parse.urlencode(query)
    started = time.monotonic()
    try:
        connection.request("POST", target, body=body, headers={"Content-Type": "text/xml"})
        response = connection.getresponse()
        status, answer = response.status, response.read()
    except (http.client.RemoteDisconnected, ConnectionResetError, TimeoutError):
        return None, time.monotonic() - started
    finally:
        connection.close()
    return builder.read(status, answer), time.monotonic() - started


def deliver(
    builder: PushBuilder,
    url: str,
    fields: Mapping[str, Any],
    *,
    retries: int,
    interval: float = WECHAT_RETRY_INTERVAL,
    repeat: bool = False,
) -> list[Attempt]:
    """Send a push, and the same push again (same body) while attempts get no answer.

    Like WeChat, the next attempt starts ``interval`` seconds after the previous one started.

    :param repeat: send all ``retries`` again even after an answer, to watch deduplication.
    """
    query, body = builder.build(fields)
    attempts: list[Attempt] = []
    for number in range(1, retries + 2):
        started = time.monotonic()
        result, seconds = send(builder, url, query, body, timeout=interval)
        attempts.append(Attempt(number, seconds, result))
        if result is not None and not result.lapsed and not repeat:
            break
        if number <= retries and not repeat:
            time.sleep(max(0.0, started + interval - time.monotonic()))
    return attempts
