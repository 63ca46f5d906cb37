"""Late delivery: replies that could not go back as the passive reply of their push.

A reply is late when its handler outlived every attempt, or when the account is a Mini Program
(which takes no passive content). With an AppSecret it goes out through the customer-service
API at once. Without one, an Official Account keeps it and sends it as the passive reply to the
same user's next message, so what a handler produced is not lost; a Mini Program without an
AppSecret has no way to send it, which is logged as an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol

from . import metrics
from .logs import pseudonym
from .store import Store

logger = logging.getLogger(__name__)

#: The customer-service window after a user's message is 48 hours (PROTOCOL.md §7).
PENDING_TTL = 48 * 3600

Fields = dict[str, Any]


class CustomerService(Protocol):
    """The part of the API client late delivery uses (:class:`app.api.WeChatAPI`)."""

    def send_custom(self, openid: str, msgtype: str, payload: Mapping[str, Any]) -> object:
        """Send one customer-service message; raises when WeChat refuses or cannot be reached."""
        ...

    def typing(self, openid: str, on: bool = True) -> object:
        """Show the typing indicator to ``openid``."""
        ...


def to_custom_message(reply: Fields, *, miniprogram: bool) -> tuple[str, dict[str, Any]] | None:
    """Translate passive-reply fields into a customer-service message (msgtype, payload).

    :return: None for replies the customer-service API has no form for (transfer, or types a
        Mini Program cannot receive).
    """
    msg_type = reply.get("MsgType")
    payload: dict[str, Any]
    if msg_type == "text":
        payload = {"content": reply["Content"]}
    elif msg_type in ("image", "voice") and not (miniprogram and msg_type == "voice"):
        payload = {"media_id": reply[msg_type.capitalize()]["MediaId"]}
    elif msg_type == "video" and not miniprogram:
        video = reply["Video"]
        payload = {
            "media_id": video["MediaId"],
            "title": video.get("Title", ""),
            "description": video.get("Description", ""),
        }
    elif msg_type == "music" and not miniprogram:
        music = reply["Music"]
        payload = {
            "title": music.get("Title", ""),
            "description": music.get("Description", ""),
            "musicurl": music.get("MusicUrl", ""),
            "hqmusicurl": music.get("HQMusicUrl", ""),
            "thumb_media_id": music.get("ThumbMediaId", ""),
        }
    elif msg_type == "news" and not miniprogram:
        items = reply["Articles"]["item"]
        articles = items if isinstance(items, list) else [items]
        payload = {
            "articles": [
                {
                    "title": article.get("Title", ""),
                    "description": article.get("Description", ""),
                    "url": article.get("Url", ""),
                    "picurl": article.get("PicUrl", ""),
                }
                for article in articles
            ]
        }
    else:
        return None
    return str(msg_type), payload


class Delivery:
    """Sends late replies by the customer-service API, or keeps them for the next message."""

    def __init__(self, store: Store, *, namespace: str, api: CustomerService | None) -> None:
        self._store = store
        self._prefix = f"pending:{namespace}:"
        self._api = api

    def send(self, openid: str, reply: Fields, *, miniprogram: bool) -> None:
        """Deliver ``reply`` to ``openid`` by the best way the account has; never raises.

        :param miniprogram: the push came from a Mini Program (by setting, or because it was
            JSON), which narrows the message types and has no next-message fallback.
        """
        if self._api is None:
            self._keep(openid, reply, miniprogram)
            return
        message = to_custom_message(reply, miniprogram=miniprogram)
        if message is None:
            metrics.LATE_DELIVERIES.labels("dropped").inc()
            logger.error(
                "late %s reply to %s dropped: the customer-service API has no such message",
                reply.get("MsgType"),
                pseudonym(openid),
            )
            return
        msg_type, payload = message
        try:
            self._api.send_custom(openid, msg_type, payload)
        except Exception as e:  # runs on a pool thread: report every failure, never raise
            logger.error("late %s reply to %s not delivered: %s", msg_type, pseudonym(openid), e)
            return
        metrics.LATE_DELIVERIES.labels("customer_service").inc()
        logger.info(
            "late %s reply delivered to %s by the customer-service API", msg_type, pseudonym(openid)
        )

    def typing(self, openid: str) -> None:
        """Show "typing…" to a user whose reply is late, when the API is available."""
        if self._api is None:
            return
        try:
            self._api.typing(openid)
        except Exception as e:  # runs on a pool thread: a hint to the user, never a failure
            logger.info("typing indicator for %s not shown: %s", pseudonym(openid), e)

    def _keep(self, openid: str, reply: Fields, miniprogram: bool) -> None:
        if miniprogram:
            metrics.LATE_DELIVERIES.labels("dropped").inc()
            logger.error(
                "late %s reply to %s dropped: a Mini Program needs WX_APPSECRET to send it",
                reply.get("MsgType"),
                pseudonym(openid),
            )
            return
        key = self._pending_key(openid)
        with self._store.lock(key, ttl=5, wait=5):
            kept = self._load(key)
            kept.append(reply)
            self._store.set(key, json.dumps(kept).encode(), PENDING_TTL)
        metrics.LATE_DELIVERIES.labels("next_message").inc()
        logger.warning(
            "late %s reply to %s kept for the user's next message (set WX_APPSECRET to send"
            " it at once)",
            reply.get("MsgType"),
            pseudonym(openid),
        )

    def kept_key(self, openid: str) -> str | None:
        """The store key of the replies kept for ``openid``; None when none are ever kept.

        The ledger reads it along with a push's claim, so that knowing there is nothing to
        take costs no round trip of its own.
        """
        return None if self._api is not None else self._pending_key(openid)

    def take_pending(self, openid: str) -> Fields | None:
        """Take the oldest reply kept for ``openid``; the rest wait for later messages."""
        key = self._pending_key(openid)
        if self._api is not None or self._store.get(key) is None:
            return None
        with self._store.lock(key, ttl=5, wait=5):
            kept = self._load(key)
            if not kept:
                return None
            first, rest = kept[0], kept[1:]
            if rest:
                self._store.set(key, json.dumps(rest).encode(), PENDING_TTL)
            else:
                self._store.delete(key)
        return first

    def _pending_key(self, openid: str) -> str:
        """The store key of a user's kept replies: a hash, so no OpenID is in key names or logs."""
        return self._prefix + hashlib.sha256(openid.encode()).hexdigest()

    def _load(self, key: str) -> list[Fields]:
        raw = self._store.get(key)
        return [] if raw is None else list(json.loads(raw))
