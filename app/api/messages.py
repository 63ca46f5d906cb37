"""Customer-service messages (客服消息) and the typing indicator, API.md §2 and §3.

Official Accounts and Mini Programs send through the same path, ``/cgi-bin/message/custom/send``
(the Mini Program page's ``business/send`` answered 40101 to callers without a ``businessid``).
A message is allowed only in the window the user's last action opened, 5 messages within 48 h
of a message (:class:`~.errors.ReplyWindowPassed`, :class:`~.errors.TooManyReplies`), and is
never retried after a failure that may have reached WeChat: the user would see it twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .call import Call, Caller, endpoint, json_answer
from .errors import APIError, ErrorCode

SEND_PATH = "/cgi-bin/message/custom/send"
TYPING_PATH = "/cgi-bin/message/custom/typing"
MP_TYPING_PATH = "/cgi-bin/message/custom/business/typing"

#: What a Mini Program's customer service can send.
MINIPROGRAM_TYPES = frozenset({"text", "image", "link", "miniprogrampage"})
#: A longer text gets 45002; no official figure, Senparc splits above it (API.md §2).
MAX_TEXT_BYTES = 2048


def check_message(msgtype: str, payload: Mapping[str, Any], *, miniprogram: bool) -> None:
    """Refuse, before sending, what WeChat is known to refuse.

    :raises ValueError: a type the account cannot send, a text over 2048 UTF-8 bytes, a news
        message with other than one article (45008), a menu message without options.
    """
    if miniprogram and msgtype not in MINIPROGRAM_TYPES:
        kinds = ", ".join(sorted(MINIPROGRAM_TYPES))
        raise ValueError(f"a Mini Program cannot send {msgtype!r} messages; it sends {kinds}")
    if msgtype == "text":
        size = len(str(payload.get("content", "")).encode("utf-8"))
        if size > MAX_TEXT_BYTES:
            raise ValueError(
                f"text is {size} UTF-8 bytes; a customer-service text takes at most"
                f" {MAX_TEXT_BYTES} (CJK characters count 3, emoji 4): split it"
            )
    elif msgtype == "news":
        count = len(payload.get("articles", ()))
        if count != 1:
            raise ValueError(f"a news message takes exactly 1 article since 2018 (got {count})")
    elif msgtype == "msgmenu" and not payload.get("list"):
        raise ValueError("a menu message needs at least one option")


def _checked_openid(openid: str) -> str:
    if not openid:
        raise ValueError("openid is empty: pass the user's OpenID (message.from_user_name)")
    return openid


class Messages(Caller):
    """Customer-service messages: every ``send_*`` goes through :meth:`send_custom`."""

    def _custom(
        self,
        openid: str,
        msgtype: str,
        payload: Mapping[str, Any],
        kf_account: str | None = None,
    ) -> Call[dict[str, Any]]:
        check_message(msgtype, payload, miniprogram=self.miniprogram)
        body: dict[str, Any] = {
            "touser": _checked_openid(openid),
            "msgtype": msgtype,
            msgtype: dict(payload),
        }
        if kf_account is not None:
            body["customservice"] = {"kf_account": kf_account}
        return Call("POST", SEND_PATH, json_answer, body=body)

    @endpoint
    def send_custom(
        self,
        openid: str,
        msgtype: str,
        payload: Mapping[str, Any],
        *,
        kf_account: str | None = None,
    ) -> Call[dict[str, Any]]:
        """Send ``{"touser": openid, "msgtype": msgtype, msgtype: payload}``.

        :param kf_account: send as this customer-service agent, ``prefix@account_wechat_id``.
        :return: WeChat's answer, ``{"errcode": 0, "errmsg": "ok"}``.
        :raises ValueError: see :func:`check_message`.
        :raises ReplyWindowPassed: 45015, outside the window (or the user unfollowed).
        :raises TooManyReplies: 45047, the window's allowance is used up.
        :raises InvalidOpenID: 40003.
        :raises APIUnavailable: no usable answer (then it was not sent twice).
        """
        return self._custom(openid, msgtype, payload, kf_account)

    @endpoint
    def send_text(self, openid: str, content: str) -> Call[dict[str, Any]]:
        """Text, which may embed ``<a href="URL">…</a>`` links; at most 2048 UTF-8 bytes."""
        return self._custom(openid, "text", {"content": content})

    @endpoint
    def send_image(self, openid: str, media_id: str) -> Call[dict[str, Any]]:
        """An image by ``media_id`` (:meth:`upload_media` ``("image", ...)``)."""
        return self._custom(openid, "image", {"media_id": media_id})

    @endpoint
    def send_voice(self, openid: str, media_id: str) -> Call[dict[str, Any]]:
        return self._custom(openid, "voice", {"media_id": media_id})

    @endpoint
    def send_video(
        self,
        openid: str,
        media_id: str,
        title: str = "",
        description: str = "",
        *,
        thumb_media_id: str | None = None,
    ) -> Call[dict[str, Any]]:
        """A video. ``thumb_media_id`` is left out unless given: documented and SDK usage
        disagree on it (API.md §2)."""
        video = {"media_id": media_id, "title": title, "description": description}
        if thumb_media_id is not None:
            video["thumb_media_id"] = thumb_media_id
        return self._custom(openid, "video", video)

    @endpoint
    def send_music(
        self,
        openid: str,
        musicurl: str,
        hqmusicurl: str,
        thumb_media_id: str,
        title: str = "",
        description: str = "",
    ) -> Call[dict[str, Any]]:
        """Parameters are named after the JSON fields (``musicurl``, ``hqmusicurl``)."""
        music = {
            "title": title,
            "description": description,
            "musicurl": musicurl,
            "hqmusicurl": hqmusicurl,
            "thumb_media_id": thumb_media_id,
        }
        return self._custom(openid, "music", music)

    @endpoint
    def send_news(
        self, openid: str, title: str, url: str, description: str = "", picurl: str = ""
    ) -> Call[dict[str, Any]]:
        """A link card: one article, the most WeChat has accepted since 2018."""
        article = {"title": title, "description": description, "url": url, "picurl": picurl}
        return self._custom(openid, "news", {"articles": [article]})

    @endpoint
    def send_mpnews(self, openid: str, media_id: str) -> Call[dict[str, Any]]:
        """A permanent news material by ``media_id``."""
        return self._custom(openid, "mpnews", {"media_id": media_id})

    @endpoint
    def send_mpnewsarticle(self, openid: str, article_id: str) -> Call[dict[str, Any]]:
        """A published article (发布) by ``article_id``."""
        return self._custom(openid, "mpnewsarticle", {"article_id": article_id})

    @endpoint
    def send_msgmenu(
        self,
        openid: str,
        head_content: str,
        options: Sequence[tuple[str, str]],
        tail_content: str = "",
    ) -> Call[dict[str, Any]]:
        """Tappable ``(id, content)`` options; a tap comes back as a text message whose
        ``bizmsgmenuid`` is the option's id."""
        menu = {
            "head_content": head_content,
            "list": [{"id": option_id, "content": content} for option_id, content in options],
            "tail_content": tail_content,
        }
        return self._custom(openid, "msgmenu", menu)

    @endpoint
    def send_wxcard(self, openid: str, card_id: str) -> Call[dict[str, Any]]:
        return self._custom(openid, "wxcard", {"card_id": card_id})

    @endpoint
    def send_miniprogrampage(
        self, openid: str, title: str, pagepath: str, thumb_media_id: str, appid: str | None = None
    ) -> Call[dict[str, Any]]:
        """A Mini Program card. An Official Account names the (linked) Mini Program's
        ``appid``; a Mini Program sending its own page leaves it out."""
        if self.miniprogram and appid is not None:
            raise ValueError("a Mini Program sends its own pages: leave appid out")
        page = {"title": title} | ({} if appid is None else {"appid": appid})
        page.update(pagepath=pagepath, thumb_media_id=thumb_media_id)
        return self._custom(openid, "miniprogrampage", page)

    @endpoint
    def send_link(
        self, openid: str, title: str, description: str, url: str, thumb_url: str
    ) -> Call[dict[str, Any]]:
        """A link card: Mini Program customer service only."""
        link = {"title": title, "description": description, "url": url, "thumb_url": thumb_url}
        return self._custom(openid, "link", link)

    @endpoint
    def typing(self, openid: str, on: bool = True) -> Call[dict[str, Any]]:
        """Show "typing…" to the user while a slow reply is prepared (15 s at most, only
        within 30 s of a message exchange), or stop showing it; any message also stops it.

        A Mini Program uses ``business/typing`` as WeChat's current page says, and falls back
        to ``custom/typing`` if that answers 40101 "missing parameter" (API.md §3: which one
        works without a ``businessid`` is unconfirmed).
        """
        body = {"touser": _checked_openid(openid), "command": "Typing" if on else "CancelTyping"}
        classic = Call("POST", TYPING_PATH, json_answer, body=body, idempotent=True)
        if not self.miniprogram:
            return classic

        def fall_back(error: APIError) -> dict[str, Any] | Call[dict[str, Any]]:
            if error.errcode != ErrorCode.MISSING_PARAMETER:
                raise error
            return classic

        return Call(
            "POST", MP_TYPING_PATH, json_answer, body=body, idempotent=True, recover=fall_back
        )
