"""Passive replies (PROTOCOL.md §6): what a handler may return for the push it answers.

Each reply is a frozen dataclass that knows its ``MsgType`` and its body; :meth:`Reply.to_fields`
is the only rendering knowledge here and gives the wire fields in wire order, for the codec to
turn into XML or JSON bytes. The values follow the codec's convention: a ``str`` becomes CDATA,
an ``int`` plain text, a dict a nested element and a list under key ``K`` repeated ``<K>``
elements. ``CreateTime`` is passed in when rendering, never taken from the clock here.

:func:`make_reply` is the one normaliser of what a handler returned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import MalformedBody
from .push import Message

#: Most articles a news reply may carry; the old limit of 10 is obsolete (PROTOCOL.md §6).
MAX_ARTICLES = 8
#: Articles a news reply may carry when it answers a user's message (PROTOCOL.md §6).
MAX_ARTICLES_TO_USER_MESSAGE = 1

_EMPTY_TEXT = '; return None or "" to answer "success" instead'


def _check(owner: str, name: str, value: object, *, required: bool = False, hint: str = "") -> None:
    """Refuse a field the codec could not render, here, where the handler's author sees it."""
    if not isinstance(value, str):
        raise TypeError(f"{owner}.{name} must be a str, got {type(value).__name__}")
    if required and not value:
        raise ValueError(f"{owner}.{name} must not be empty{hint}")


@dataclass(frozen=True, slots=True)
class Reply:
    """Base of the passive replies."""

    #: ``MsgType`` of the reply.
    msg_type: ClassVar[str] = ""

    def to_fields(
        self, *, to_user_name: str, from_user_name: str, create_time: int
    ) -> dict[str, Any]:
        """The reply's wire fields: the four common ones, then the body.

        :param to_user_name: the user's OpenID, the push's ``FromUserName``.
        :param from_user_name: the account's ID, the push's ``ToUserName``.
        :param create_time: Unix seconds at rendering.
        """
        common: dict[str, Any] = {
            "ToUserName": to_user_name,
            "FromUserName": from_user_name,
            "CreateTime": create_time,
            "MsgType": self.msg_type,
        }
        return {**common, **self._body()}

    def _body(self) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} has no body")


@dataclass(frozen=True, slots=True)
class TextReply(Reply):
    """PROTOCOL.md §6: ``text``."""

    msg_type = "text"
    content: str

    def __post_init__(self) -> None:
        _check("TextReply", "content", self.content, required=True, hint=_EMPTY_TEXT)

    def _body(self) -> dict[str, Any]:
        return {"Content": self.content}


@dataclass(frozen=True, slots=True)
class ImageReply(Reply):
    """PROTOCOL.md §6: ``image``; ``media_id`` of an uploaded image."""

    msg_type = "image"
    media_id: str

    def __post_init__(self) -> None:
        _check("ImageReply", "media_id", self.media_id, required=True)

    def _body(self) -> dict[str, Any]:
        return {"Image": {"MediaId": self.media_id}}


@dataclass(frozen=True, slots=True)
class VoiceReply(Reply):
    """PROTOCOL.md §6: ``voice``; ``media_id`` of an uploaded voice."""

    msg_type = "voice"
    media_id: str

    def __post_init__(self) -> None:
        _check("VoiceReply", "media_id", self.media_id, required=True)

    def _body(self) -> dict[str, Any]:
        return {"Voice": {"MediaId": self.media_id}}


@dataclass(frozen=True, slots=True)
class VideoReply(Reply):
    """PROTOCOL.md §6: ``video``; ``media_id`` of an uploaded video."""

    msg_type = "video"
    media_id: str
    title: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        _check("VideoReply", "media_id", self.media_id, required=True)
        _check("VideoReply", "title", self.title)
        _check("VideoReply", "description", self.description)

    def _body(self) -> dict[str, Any]:
        video = {"MediaId": self.media_id, "Title": self.title, "Description": self.description}
        return {"Video": video}


@dataclass(frozen=True, slots=True)
class MusicReply(Reply):
    """PROTOCOL.md §6: ``music``; WeChat requires the thumbnail, the rest may be empty."""

    msg_type = "music"
    title: str
    description: str
    music_url: str
    hq_music_url: str
    thumb_media_id: str

    def __post_init__(self) -> None:
        _check("MusicReply", "title", self.title)
        _check("MusicReply", "description", self.description)
        _check("MusicReply", "music_url", self.music_url)
        _check("MusicReply", "hq_music_url", self.hq_music_url)
        _check("MusicReply", "thumb_media_id", self.thumb_media_id, required=True)

    def _body(self) -> dict[str, Any]:
        music = {
            "Title": self.title,
            "Description": self.description,
            "MusicUrl": self.music_url,
            "HQMusicUrl": self.hq_music_url,
            "ThumbMediaId": self.thumb_media_id,
        }
        return {"Music": music}


@dataclass(frozen=True, slots=True)
class Article:
    """One article of a :class:`NewsReply`."""

    title: str
    description: str = ""
    #: Cover picture; large for the first article, small for the others.
    pic_url: str = ""
    #: Opened when the user taps the article.
    url: str = ""

    def __post_init__(self) -> None:
        for name in ("title", "description", "pic_url", "url"):
            _check("Article", name, getattr(self, name))

    def to_fields(self) -> dict[str, Any]:
        """The ``<item>`` of this article."""
        return {
            "Title": self.title,
            "Description": self.description,
            "PicUrl": self.pic_url,
            "Url": self.url,
        }


@dataclass(frozen=True, slots=True)
class NewsReply(Reply):
    """PROTOCOL.md §6: ``news``, 1 to 8 articles (1 when answering a user's message)."""

    msg_type = "news"
    #: Kept as a tuple, whatever sequence was given, so the reply stays immutable.
    articles: Sequence[Article]

    def __post_init__(self) -> None:
        if isinstance(self.articles, (str, bytes)) or not isinstance(self.articles, Sequence):
            got = type(self.articles).__name__
            raise TypeError(f"NewsReply.articles must be a sequence of Article, got {got}")
        object.__setattr__(self, "articles", tuple(self.articles))
        for article in self.articles:
            if not isinstance(article, Article):
                got = type(article).__name__
                raise TypeError(f"NewsReply.articles must hold Article objects, got {got}")
        if not self.articles:
            raise ValueError("NewsReply needs at least 1 article")
        if len(self.articles) > MAX_ARTICLES:
            raise ValueError(
                f"NewsReply has {len(self.articles)} articles; WeChat takes at most {MAX_ARTICLES}"
            )

    def _body(self) -> dict[str, Any]:
        items = [article.to_fields() for article in self.articles]
        return {"ArticleCount": len(items), "Articles": {"item": items}}


@dataclass(frozen=True, slots=True)
class TransferCustomerServiceReply(Reply):
    """PROTOCOL.md §6: ``transfer_customer_service``, hand a user's message to the agents.

    ``kf_account`` names one agent (``account@wechat_id``); None lets any agent take it.
    WeChat forwards only user messages, never events.
    """

    msg_type = "transfer_customer_service"
    kf_account: str | None = None

    def __post_init__(self) -> None:
        if self.kf_account is not None:
            _check(
                "TransferCustomerServiceReply",
                "kf_account",
                self.kf_account,
                required=True,
                hint="; use None to let any agent take the message",
            )

    def _body(self) -> dict[str, Any]:
        if self.kf_account is None:
            return {}
        return {"TransInfo": {"KfAccount": self.kf_account}}


_ACCEPTED = (
    "None, a str, or a reply (TextReply, ImageReply, VoiceReply, VideoReply, MusicReply,"
    " NewsReply, TransferCustomerServiceReply)"
)


def make_reply(value: object, message: Message) -> Reply | None:
    """Normalise what a handler returned into the reply to send, or None for "success".

    :param value: the handler's return value: None or "" (answer "success"), a ``str`` (a
        text reply) or a :class:`Reply`.
    :param message: the push being answered; a user's message takes a news reply of 1 article.
    :raises TypeError: ``value`` is of another type.
    :raises ValueError: a news reply of several articles answers a user's message.
    """
    if value is None:
        return None
    if isinstance(value, str):
        return TextReply(value) if value else None
    if not isinstance(value, Reply):
        raise TypeError(f"handler returned {type(value).__name__}; return {_ACCEPTED}")
    if (
        isinstance(value, NewsReply)
        and message.is_user_message
        and len(value.articles) > MAX_ARTICLES_TO_USER_MESSAGE
    ):
        raise ValueError(
            f"NewsReply has {len(value.articles)} articles, but a reply to a user's"
            f" {message.msg_type} message may carry only {MAX_ARTICLES_TO_USER_MESSAGE}"
        )
    return value


def parse_reply(fields: Mapping[str, Any]) -> Reply:
    """Read reply fields back into a typed reply: the reverse of :meth:`Reply.to_fields`.

    For the test kit and the simulator, which look at replies the way WeChat would.

    :raises MalformedBody: the fields are not a passive reply WeChat knows.
    """
    msg_type = fields.get("MsgType")
    try:
        if msg_type == "text":
            return TextReply(fields["Content"])
        if msg_type in ("image", "voice"):
            media_id = fields[str(msg_type).capitalize()]["MediaId"]
            return ImageReply(media_id) if msg_type == "image" else VoiceReply(media_id)
        if msg_type == "video":
            video = fields["Video"]
            return VideoReply(
                video["MediaId"], video.get("Title", ""), video.get("Description", "")
            )
        if msg_type == "music":
            music = fields["Music"]
            return MusicReply(
                music.get("Title", ""),
                music.get("Description", ""),
                music.get("MusicUrl", ""),
                music.get("HQMusicUrl", ""),
                music["ThumbMediaId"],
            )
        if msg_type == "news":
            items = fields["Articles"]["item"]
            return NewsReply(
                [
                    Article(
                        item.get("Title", ""),
                        item.get("Description", ""),
                        item.get("PicUrl", ""),
                        item.get("Url", ""),
                    )
                    for item in (items if isinstance(items, list) else [items])
                ]
            )
        if msg_type == "transfer_customer_service":
            trans_info = fields.get("TransInfo")
            kf_account = trans_info.get("KfAccount") if isinstance(trans_info, Mapping) else None
            return TransferCustomerServiceReply(kf_account)
    except (KeyError, TypeError, ValueError) as e:
        raise MalformedBody(f"{msg_type} reply is incomplete: {e}") from e
    raise MalformedBody(f"MsgType {str(msg_type)[:40]!r} is not a passive reply")
