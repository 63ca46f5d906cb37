"""Late delivery: replies that could not go back as the passive reply of their push.

A reply is late when its handler outlived every attempt, when the account is a Mini Program
(which takes no passive content), or when it is the rest of a text too long to be shown
passively. With an AppSecret it goes out through the customer-service API at once, a long text
in parts of at most 2048 bytes, in order. Without one, an Official Account keeps it and sends it
as the passive reply to the same user's next message, so what a handler produced is not lost; a
Mini Program without an AppSecret has no way to send it, which is logged as an error.

The customer-service API takes a message only within the window the user's last action opened
(:mod:`.window`). A reply it would refuse, known from the user's record or learnt from
WeChat's answer (45015 window passed, 45047 allowance used up), is kept the same way for the
user's next message instead of being dropped, and the log line and ``wx_kept_replies`` say
why. A Mini Program's kept replies are sent by the API once the user writes again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Protocol

from .. import metrics
from ..api import ReplyWindowPassed, TooManyReplies
from ..logs import pseudonym
from ..store import Store
from ..wechat.messages import Message
from ..window import Contact, Later, Windows
from .policy import CUSTOM_TEXT_BYTES, Fitted, split_text

logger = logging.getLogger(__name__)

#: Seconds between a passive answer and the rest of its text, so that the parts arrive in order.
FOLLOW_UP_DELAY = 1.0

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
    """Sends late replies by the customer-service API, or keeps them for the next message.

    :param later: schedules background work (the handler pool's ``later``): the rest of a long
        text, and the writes of :class:`~.window.Windows`.
    """

    def __init__(
        self,
        store: Store,
        *,
        namespace: str,
        api: CustomerService | None,
        later: Later | None = None,
    ) -> None:
        self._api = api
        self._later = later
        self.windows = Windows(store, namespace=namespace, tracked=api is not None, later=later)

    @property
    def can_send(self) -> bool:
        """Whether the customer-service API is there (an AppSecret is set)."""
        return self._api is not None

    def kept_key(self, openid: str) -> str:
        """The store key of ``openid``'s record (windows and kept replies).

        The ledger reads it along with a push's claim, so that knowing whether there is
        anything to take costs no round trip of its own.
        """
        return self.windows.key(openid)

    def saw(self, message: Message, peeked: bytes | None, *, miniprogram: bool) -> Contact:
        """Take in a push: what its user's record says (as the claim read it) and what the
        push opened. A Mini Program user who writes again gets their kept replies by the API.
        """
        contact = self.windows.saw(message, Contact.parse(peeked))
        if contact.kept and miniprogram and message.is_user_message and self._later is not None:
            openid = message.from_user_name
            self._later(0, lambda: self._resend_kept(openid))
        return contact

    def send(self, openid: str, reply: Fields, *, miniprogram: bool) -> None:
        """Deliver ``reply`` to ``openid`` by the best way the account has; never raises.

        :param miniprogram: the push came from a Mini Program (by setting, or because it was
            JSON), which narrows the message types and has no passive reply to carry it later.
        """
        if self._api is None:
            self._keep_without_api(openid, reply, miniprogram)
            return
        try:
            self._send(openid, reply, miniprogram)
        except Exception as e:  # runs on a pool thread: report every failure, never raise
            logger.error("late reply to %s not delivered: %s", pseudonym(openid), e)

    def follow(self, openid: str, fitted: Fitted) -> None:
        """After a passive answer: send the rest of its text, or say that it was cut short."""
        if fitted.cut_from:
            logger.warning(
                "text reply to %s is %d bytes, WeChat shows %d at most: cut short (set"
                " WX_APPSECRET to send the rest by the customer-service API)",
                pseudonym(openid),
                fitted.cut_from,
                len(str(fitted.passive["Content"] if fitted.passive else "").encode()),
            )
        if not fitted.rest or self._later is None:
            return
        rest = {"MsgType": "text", "Content": fitted.rest}
        self._later(FOLLOW_UP_DELAY, lambda: self.send(openid, rest, miniprogram=False))

    def typing(self, openid: str) -> None:
        """Show "typing…" to a user whose reply is late, when the API is available."""
        if self._api is None:
            return
        try:
            self._api.typing(openid)
        except Exception as e:  # runs on a pool thread: a hint to the user, never a failure
            logger.info("typing indicator for %s not shown: %s", pseudonym(openid), e)

    def take_pending(self, openid: str) -> Fields | None:
        """Take the oldest reply kept for ``openid``; the rest wait for later messages."""
        with self.windows.editing(openid) as contact:
            return contact.kept.pop(0) if contact.kept else None

    def _send(self, openid: str, reply: Fields, miniprogram: bool) -> None:
        """Send ``reply`` within the user's window; keep what WeChat refuses or would refuse.

        The user's record is locked to read and write it, never while WeChat is called, so
        that a push of the same user taking a kept reply is not held up by a send.
        """
        assert self._api is not None
        messages = to_custom_messages(reply, miniprogram=miniprogram)
        if not messages:
            metrics.LATE_DELIVERIES.labels("dropped").inc()
            logger.error(
                "late %s reply to %s dropped: the customer-service API has no such message",
                reply.get("MsgType"),
                pseudonym(openid),
            )
            return
        with self.windows.editing(openid) as contact:
            reach = contact.reach(time.time())
            if not reach:
                self._keep(contact, openid, reply, reach.reason, used_up=reach.used_up)
                return
            for _ in range(min(reach.left, len(messages))):
                contact.count_sent(time.time())
        for index, (msg_type, payload) in enumerate(messages):
            try:
                self._api.send_custom(openid, msg_type, payload)
            except (ReplyWindowPassed, TooManyReplies) as e:
                with self.windows.editing(openid) as contact:
                    contact.refused(e.errcode)
                    why = f"{e.path} answered {e.errcode}, {type(e).__name__}"
                    used_up = isinstance(e, TooManyReplies)
                    self._keep(contact, openid, _rest(reply, index), why, used_up=used_up)
                return
            except Exception as e:
                logger.error(
                    "late %s reply to %s not delivered: %s", msg_type, pseudonym(openid), e
                )
                return
            metrics.LATE_DELIVERIES.labels("customer_service").inc()
            logger.info(
                "late %s reply delivered to %s by the customer-service API",
                msg_type,
                pseudonym(openid),
            )

    def _keep(
        self, contact: Contact, openid: str, reply: Fields, why: str, *, used_up: bool
    ) -> None:
        """Keep a reply the customer-service API refuses (or would) for the next message."""
        contact.kept.append(reply)
        metrics.KEPT_REPLIES.labels("allowance_used" if used_up else "window_closed").inc()
        self._kept(openid, reply, f"the customer-service API would refuse it: {why}")

    def _resend_kept(self, openid: str) -> None:
        """Send a Mini Program user's kept replies, now that their message opened a window."""
        try:
            with self.windows.editing(openid) as contact:
                kept, contact.kept = contact.kept, []
            for reply in kept:
                self._send(openid, reply, True)
        except Exception as e:  # background work: report, never raise
            logger.error("kept replies to %s not delivered: %s", pseudonym(openid), e)

    def _keep_without_api(self, openid: str, reply: Fields, miniprogram: bool) -> None:
        if miniprogram:
            metrics.LATE_DELIVERIES.labels("dropped").inc()
            logger.error(
                "late %s reply to %s dropped: a Mini Program needs WX_APPSECRET to send it",
                reply.get("MsgType"),
                pseudonym(openid),
            )
            return
        with self.windows.editing(openid) as contact:
            contact.kept.append(reply)
        metrics.KEPT_REPLIES.labels("no_appsecret").inc()
        self._kept(openid, reply, "set WX_APPSECRET to send it at once")

    @staticmethod
    def _kept(openid: str, reply: Fields, why: str) -> None:
        metrics.LATE_DELIVERIES.labels("next_message").inc()
        logger.warning(
            "late %s reply to %s kept for the user's next message (%s)",
            reply.get("MsgType"),
            pseudonym(openid),
            why,
        )


def to_custom_messages(reply: Fields, *, miniprogram: bool) -> list[tuple[str, dict[str, Any]]]:
    """The customer-service messages that deliver ``reply``: a text in parts that each fit.

    :return: empty for replies the customer-service API has no form for.
    """
    if reply.get("MsgType") == "text":
        parts = split_text(str(reply["Content"]), CUSTOM_TEXT_BYTES)
        return [("text", {"content": part.strip() or part}) for part in parts]
    message = to_custom_message(reply, miniprogram=miniprogram)
    return [] if message is None else [message]


def _rest(reply: Fields, index: int) -> Fields:
    """What of ``reply`` is still unsent once the first ``index`` of its messages went out."""
    if index == 0 or reply.get("MsgType") != "text":
        return reply
    parts = split_text(str(reply["Content"]), CUSTOM_TEXT_BYTES)
    return {**reply, "Content": "".join(parts[index:]).lstrip()}
