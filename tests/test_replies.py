"""Passive replies: wire fields in wire order, constructor validation, make_reply."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from app.wechat.codec import render_xml
from app.wechat.events import ClickEvent
from app.wechat.messages import Message, TextMessage, parse_message
from app.wechat.replies import (
    MAX_ARTICLES,
    Article,
    ImageReply,
    MusicReply,
    NewsReply,
    Reply,
    TextReply,
    TransferCustomerServiceReply,
    VideoReply,
    VoiceReply,
    make_reply,
)

OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"
ACCOUNT = "gh_0123456789ab"
MEDIA_ID = "MvJ3Rp0vS9dqX6c2K6Lh1c1G6DnYq3kXoJd9a2Ck4n5i"
THUMB_ID = "Zk8Q2vN4bH7rT1xW9yL3mC6pF0sD5gJ2aK8eR4tU7oI"
HEAD = [
    ("ToUserName", OPENID),
    ("FromUserName", ACCOUNT),
    ("CreateTime", 1732406401),
]

TEXT: Message = parse_message(
    {
        "ToUserName": ACCOUNT,
        "FromUserName": OPENID,
        "CreateTime": "1732406400",
        "MsgType": "text",
        "Content": "news",
        "MsgId": "24812345678901234",
    }
)
CLICK: Message = parse_message(
    {
        "ToUserName": ACCOUNT,
        "FromUserName": OPENID,
        "CreateTime": "1732406400",
        "MsgType": "event",
        "Event": "CLICK",
        "EventKey": "MENU_NEWS",
    }
)


def wire(reply: Reply) -> list[tuple[str, Any]]:
    fields = reply.to_fields(to_user_name=OPENID, from_user_name=ACCOUNT, create_time=1732406401)
    return list(fields.items())


def article(n: int) -> Article:
    return Article(f"Title {n}", f"Description {n}", f"https://p.example/{n}.jpg", f"https://a/{n}")


# -- to_fields: every type, exact values in wire order -------------------------------------


def test_text_fields() -> None:
    assert wire(TextReply("收到")) == [*HEAD, ("MsgType", "text"), ("Content", "收到")]


def test_image_fields() -> None:
    assert wire(ImageReply(MEDIA_ID)) == [
        *HEAD,
        ("MsgType", "image"),
        ("Image", {"MediaId": MEDIA_ID}),
    ]


def test_voice_fields() -> None:
    assert wire(VoiceReply(MEDIA_ID)) == [
        *HEAD,
        ("MsgType", "voice"),
        ("Voice", {"MediaId": MEDIA_ID}),
    ]


def test_video_fields() -> None:
    fields = wire(VideoReply(MEDIA_ID, title="Launch", description="Our launch video"))
    assert fields == [
        *HEAD,
        ("MsgType", "video"),
        ("Video", {"MediaId": MEDIA_ID, "Title": "Launch", "Description": "Our launch video"}),
    ]
    assert list(fields[-1][1]) == ["MediaId", "Title", "Description"]


def test_video_fields_without_title() -> None:
    video = dict(wire(VideoReply(MEDIA_ID)))["Video"]
    assert video == {"MediaId": MEDIA_ID, "Title": "", "Description": ""}


def test_music_fields() -> None:
    reply = MusicReply(
        "Song", "A song", "http://m.example/s.mp3", "http://m.example/s-hq.mp3", THUMB_ID
    )
    fields = wire(reply)
    assert fields == [
        *HEAD,
        ("MsgType", "music"),
        (
            "Music",
            {
                "Title": "Song",
                "Description": "A song",
                "MusicUrl": "http://m.example/s.mp3",
                "HQMusicUrl": "http://m.example/s-hq.mp3",
                "ThumbMediaId": THUMB_ID,
            },
        ),
    ]
    assert list(fields[-1][1]) == ["Title", "Description", "MusicUrl", "HQMusicUrl", "ThumbMediaId"]


def test_news_fields() -> None:
    assert wire(NewsReply([article(1), article(2)])) == [
        *HEAD,
        ("MsgType", "news"),
        ("ArticleCount", 2),
        (
            "Articles",
            {
                "item": [
                    {
                        "Title": "Title 1",
                        "Description": "Description 1",
                        "PicUrl": "https://p.example/1.jpg",
                        "Url": "https://a/1",
                    },
                    {
                        "Title": "Title 2",
                        "Description": "Description 2",
                        "PicUrl": "https://p.example/2.jpg",
                        "Url": "https://a/2",
                    },
                ]
            },
        ),
    ]


def test_transfer_to_any_agent_fields() -> None:
    assert wire(TransferCustomerServiceReply()) == [*HEAD, ("MsgType", "transfer_customer_service")]


def test_transfer_to_one_agent_fields() -> None:
    assert wire(TransferCustomerServiceReply("test1@test")) == [
        *HEAD,
        ("MsgType", "transfer_customer_service"),
        ("TransInfo", {"KfAccount": "test1@test"}),
    ]


def test_create_time_is_what_was_passed() -> None:
    reply = TextReply("hi")
    fields = reply.to_fields(to_user_name=OPENID, from_user_name=ACCOUNT, create_time=0)
    assert fields["CreateTime"] == 0


@pytest.mark.parametrize(
    ("reply", "msg_type"),
    [
        (TextReply("a"), "text"),
        (ImageReply("m"), "image"),
        (VoiceReply("m"), "voice"),
        (VideoReply("m"), "video"),
        (MusicReply("", "", "", "", "t"), "music"),
        (NewsReply([article(1)]), "news"),
        (TransferCustomerServiceReply(), "transfer_customer_service"),
    ],
)
def test_msg_type(reply: Reply, msg_type: str) -> None:
    assert reply.msg_type == msg_type


def test_text_reply_renders_with_the_reply_xml_of_protocol_section_8() -> None:
    fields = TextReply("收到").to_fields(
        to_user_name=OPENID, from_user_name=ACCOUNT, create_time=1732406401
    )
    assert (
        render_xml(fields)
        == (
            "<xml><ToUserName><![CDATA[oAbCdEfGhIjKlMnOpQrStUvWxYz0]]></ToUserName>"
            "<FromUserName><![CDATA[gh_0123456789ab]]></FromUserName>"
            "<CreateTime>1732406401</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            "<Content><![CDATA[收到]]></Content></xml>"
        ).encode()
    )


def test_news_reply_renders_as_repeated_items() -> None:
    fields = NewsReply([Article("A", url="u1"), Article("B", url="u2")]).to_fields(
        to_user_name=OPENID, from_user_name=ACCOUNT, create_time=1732406401
    )
    body = render_xml(fields).decode()
    assert body.endswith(
        "<MsgType><![CDATA[news]]></MsgType><ArticleCount>2</ArticleCount><Articles>"
        "<item><Title><![CDATA[A]]></Title><Description><![CDATA[]]></Description>"
        "<PicUrl><![CDATA[]]></PicUrl><Url><![CDATA[u1]]></Url></item>"
        "<item><Title><![CDATA[B]]></Title><Description><![CDATA[]]></Description>"
        "<PicUrl><![CDATA[]]></PicUrl><Url><![CDATA[u2]]></Url></item></Articles></xml>"
    )


# -- constructors validate -----------------------------------------------------------------


def wrong(value: object) -> Any:
    """Pass a value of the wrong type past the type checker, as an untyped caller could."""
    return value


def value_error(make: Any) -> str:
    with pytest.raises(ValueError) as info:
        make()
    return str(info.value)


def type_error(make: Any) -> str:
    with pytest.raises(TypeError) as info:
        make()
    return str(info.value)


def test_empty_text() -> None:
    assert value_error(lambda: TextReply("")) == (
        'TextReply.content must not be empty; return None or "" to answer "success" instead'
    )


def test_text_not_a_str() -> None:
    assert type_error(lambda: TextReply(wrong(42))) == "TextReply.content must be a str, got int"


@pytest.mark.parametrize("cls", [ImageReply, VoiceReply, VideoReply])
def test_empty_media_id(cls: type[Reply]) -> None:
    message = value_error(lambda: cls(""))  # type: ignore[call-arg]
    assert message == f"{cls.__name__}.media_id must not be empty"


def test_video_title_not_a_str() -> None:
    assert type_error(lambda: VideoReply("m", title=wrong(None))) == (
        "VideoReply.title must be a str, got NoneType"
    )


def test_music_without_thumbnail() -> None:
    assert value_error(lambda: MusicReply("Song", "", "http://m/s.mp3", "", "")) == (
        "MusicReply.thumb_media_id must not be empty"
    )


def test_music_url_not_a_str() -> None:
    assert type_error(lambda: MusicReply("Song", "", wrong(None), "", THUMB_ID)) == (
        "MusicReply.music_url must be a str, got NoneType"
    )


def test_news_without_articles() -> None:
    assert value_error(lambda: NewsReply([])) == "NewsReply needs at least 1 article"


def test_news_with_eight_articles() -> None:
    reply = NewsReply([article(n) for n in range(MAX_ARTICLES)])
    assert dict(wire(reply))["ArticleCount"] == 8


def test_news_with_nine_articles() -> None:
    assert value_error(lambda: NewsReply([article(n) for n in range(9)])) == (
        "NewsReply has 9 articles; WeChat takes at most 8"
    )


def test_news_with_something_else_than_articles() -> None:
    assert type_error(lambda: NewsReply([article(1), wrong({"Title": "x"})])) == (
        "NewsReply.articles must hold Article objects, got dict"
    )


def test_news_articles_not_a_sequence() -> None:
    assert type_error(lambda: NewsReply(wrong(article(1)))) == (
        "NewsReply.articles must be a sequence of Article, got Article"
    )


def test_news_keeps_its_own_tuple() -> None:
    articles = [article(1)]
    reply = NewsReply(articles)
    articles.append(article(2))
    assert reply.articles == (article(1),)


def test_article_url_not_a_str() -> None:
    assert (
        type_error(lambda: Article("T", url=wrong(None)))
        == "Article.url must be a str, got NoneType"
    )


def test_transfer_to_an_empty_account() -> None:
    assert value_error(lambda: TransferCustomerServiceReply("")) == (
        "TransferCustomerServiceReply.kf_account must not be empty;"
        " use None to let any agent take the message"
    )


def test_replies_are_frozen() -> None:
    reply = TextReply("hi")
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.content = "changed"  # type: ignore[misc]


# -- make_reply ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
def test_nothing_means_success(value: object) -> None:
    assert make_reply(value, TEXT) is None


def test_str_becomes_text() -> None:
    assert make_reply("你好", TEXT) == TextReply("你好")


def test_whitespace_is_text_too() -> None:
    assert make_reply(" ", TEXT) == TextReply(" ")


def test_reply_is_returned_as_is() -> None:
    reply = ImageReply(MEDIA_ID)
    assert make_reply(reply, TEXT) is reply


@pytest.mark.parametrize(("value", "name"), [(42, "int"), (b"hi", "bytes"), ({}, "dict")])
def test_other_types_are_refused(value: object, name: str) -> None:
    with pytest.raises(TypeError) as info:
        make_reply(value, TEXT)
    assert str(info.value) == (
        f"handler returned {name}; return None, a str, or a reply (TextReply, ImageReply,"
        " VoiceReply, VideoReply, MusicReply, NewsReply, TransferCustomerServiceReply)"
    )


def test_news_of_one_article_answers_a_user_message() -> None:
    reply = NewsReply([article(1)])
    assert make_reply(reply, TEXT) is reply


def test_news_of_two_articles_to_a_user_message_is_refused() -> None:
    assert isinstance(TEXT, TextMessage)
    with pytest.raises(ValueError) as info:
        make_reply(NewsReply([article(1), article(2)]), TEXT)
    assert str(info.value) == (
        "NewsReply has 2 articles, but a reply to a user's text message may carry only 1"
    )


def test_news_of_eight_articles_answers_an_event() -> None:
    assert isinstance(CLICK, ClickEvent)
    reply = NewsReply([article(n) for n in range(8)])
    assert make_reply(reply, CLICK) is reply
