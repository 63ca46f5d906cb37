"""Template messages (模板消息, Official Accounts) and subscribe messages (订阅消息), API.md §4-§5.

Both take ``data`` as ``{"thing1": "value", ...}``; a value may also be a mapping with
``value`` (and, for template messages, ``color``, which WeChat now ignores). Subscribe-message
values are checked against the limits of their key's type (``thing`` ≤ 20 characters, ...)
before sending, because WeChat's 47003 names the key but not the rule.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from .call import Answer, Call, Caller, endpoint, json_answer

TEMPLATE_PATH = "/cgi-bin/message/template/send"
SUBSCRIBE_PATH = "/cgi-bin/message/subscribe/send"
BIZSEND_PATH = "/cgi-bin/message/subscribe/bizsend"

#: ``{"thing1": "text"}`` or ``{"thing1": {"value": "text", "color": "#173177"}}``.
Data = Mapping[str, str | Mapping[str, str]]

#: Most characters a subscribe-message value of each key type takes (API.md §5).
SUBSCRIBE_LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phone_number": 17,
    "car_number": 8,
    "phrase": 5,
}
#: ``name`` values: 10 CJK characters or 20 letters, so a CJK character counts twice.
NAME_WIDTH = 20
STATES = ("developer", "trial", "formal")
LANGUAGES = ("zh_CN", "en_US", "zh_HK", "zh_TW")

_KEY = re.compile(r"([a-z_]+?)(\d+)")


def template_data(data: Data, *, colors: bool) -> dict[str, dict[str, str]]:
    """``data`` in the wire form ``{"key": {"value": ...}}``; ``colors`` keeps ``color``."""
    if not data:
        raise ValueError("data is empty: give the template's keys, e.g. {'thing1': '...'}")
    wire: dict[str, dict[str, str]] = {}
    for key, item in data.items():
        if isinstance(item, str):
            wire[key] = {"value": item}
            continue
        if "value" not in item:
            raise ValueError(f"data[{key!r}] has no 'value'")
        wire[key] = dict(item) if colors else {"value": item["value"]}
    return wire


def check_subscribe_data(data: Mapping[str, Mapping[str, str]]) -> None:
    """Refuse values longer than their key's type allows (``thing3`` is a ``thing``).

    :raises ValueError: naming the key, its type, the limit and the length found.
    """
    for key, item in data.items():
        match = _KEY.fullmatch(key)
        if match is None:
            continue  # not a typed key; WeChat decides
        kind, value = match.group(1), item["value"]
        if kind == "name":
            width = sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in value)
            if width > NAME_WIDTH:
                raise ValueError(
                    f"data.{key}: a name takes at most 10 CJK characters or 20 letters ({value!r})"
                )
            continue
        limit = SUBSCRIBE_LIMITS.get(kind)
        if limit is not None and len(value) > limit:
            raise ValueError(
                f"data.{key}: a {kind} value takes at most {limit} characters"
                f" (got {len(value)}); WeChat would answer 47003"
            )


def _page(miniprogram: Mapping[str, str] | None) -> dict[str, dict[str, str]]:
    if miniprogram is None:
        return {}
    if not miniprogram.get("appid") or not miniprogram.get("pagepath"):
        raise ValueError("miniprogram needs 'appid' and 'pagepath'")
    return {"miniprogram": {"appid": miniprogram["appid"], "pagepath": miniprogram["pagepath"]}}


def _msgid(answer: Answer) -> int:
    return int(answer.json.get("msgid", 0))


def _addressed(openid: str, template_id: str) -> dict[str, Any]:
    if not openid or not template_id:
        raise ValueError("openid and template_id must not be empty")
    return {"touser": openid, "template_id": template_id}


class Templates(Caller):
    @endpoint
    def send_template(
        self,
        openid: str,
        template_id: str,
        data: Data,
        *,
        url: str | None = None,
        miniprogram: Mapping[str, str] | None = None,
        client_msg_id: str | None = None,
    ) -> Call[int]:
        """Send a template message (Official Accounts, verified service accounts).

        :param url: the web page a tap opens.
        :param miniprogram: ``{"appid": ..., "pagepath": ...}``: a tap opens that page
            (``url`` is then the fallback for old clients).
        :param client_msg_id: WeChat sends one message per user and id within 10 minutes, so
            with one the call is retried after a failure that may have reached WeChat.
        :return: the ``msgid`` that the ``TEMPLATESENDJOBFINISH`` event names later.
        :raises InvalidTemplateID: 40037. :raises ArgumentInvalid: 47003, errmsg names the key.
        :raises NotFollowing: 43004.
        """
        self._official_only("template messages")
        body = _addressed(openid, template_id)
        if url is not None:
            body["url"] = url
        body |= _page(miniprogram)
        if client_msg_id is not None:
            body["client_msg_id"] = client_msg_id
        body["data"] = template_data(data, colors=True)
        return Call("POST", TEMPLATE_PATH, _msgid, body=body, idempotent=client_msg_id is not None)

    @endpoint
    def send_subscribe_message(
        self,
        openid: str,
        template_id: str,
        data: Data,
        *,
        page: str | None = None,
        miniprogram_state: str | None = None,
        lang: str | None = None,
    ) -> Call[dict[str, Any]]:
        """Send a Mini Program's subscribe message (``/subscribe/send``).

        :param page: a page of this Mini Program, query allowed; none → no jump.
        :param miniprogram_state: ``developer``, ``trial`` or ``formal`` (WeChat's default).
        :param lang: ``zh_CN`` (default), ``en_US``, ``zh_HK`` or ``zh_TW``.
        :raises ValueError: a value too long for its key's type, an unknown state or language.
        :raises SubscriptionRefused: 43101, the user gave no (more) consent.
        """
        if miniprogram_state is not None and miniprogram_state not in STATES:
            raise ValueError(
                f"miniprogram_state must be one of {STATES}, not {miniprogram_state!r}"
            )
        if lang is not None and lang not in LANGUAGES:
            raise ValueError(f"lang must be one of {LANGUAGES}, not {lang!r}")
        body = _addressed(openid, template_id)
        optional = {"page": page, "miniprogram_state": miniprogram_state, "lang": lang}
        body |= {name: value for name, value in optional.items() if value is not None}
        body["data"] = template_data(data, colors=False)
        check_subscribe_data(body["data"])
        return Call("POST", SUBSCRIBE_PATH, json_answer, body=body)

    @endpoint
    def send_subscribe_notice(
        self,
        openid: str,
        template_id: str,
        data: Data,
        *,
        page: str | None = None,
        miniprogram: Mapping[str, str] | None = None,
    ) -> Call[dict[str, Any]]:
        """Send an Official Account's subscribe notice (订阅通知, ``/subscribe/bizsend``).

        :param page: the web page a tap opens.
        :param miniprogram: ``{"appid": ..., "pagepath": ...}``; wins over ``page``.
        :raises ValueError: a value too long for its key's type.
        :raises SubscriptionRefused: 43101.
        """
        self._official_only("subscribe notices")
        body = _addressed(openid, template_id)
        if page is not None:
            body["page"] = page
        body |= _page(miniprogram)
        body["data"] = template_data(data, colors=False)
        check_subscribe_data(body["data"])
        return Call("POST", BIZSEND_PATH, json_answer, body=body)
