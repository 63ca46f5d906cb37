"""parse_message: every type of PROTOCOL.md §5, from XML-shaped and JSON-shaped fields."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from app.wechat.codec import parse_xml
from app.wechat.errors import MalformedBody
from app.wechat.events import (
    ClickEvent,
    DebugDemoEvent,
    KfCloseSessionEvent,
    KfCreateSessionEvent,
    KfSwitchSessionEvent,
    LocationEvent,
    LocationSelectEvent,
    MassSendJobFinishEvent,
    PicPhotoOrAlbumEvent,
    PicSysPhotoEvent,
    PicWeixinEvent,
    PublishJobFinishEvent,
    ScanCodePushEvent,
    ScanCodeWaitMsgEvent,
    ScanEvent,
    SubscribeEvent,
    SubscribeMsgChangeEntry,
    SubscribeMsgChangeEvent,
    SubscribeMsgPopupEntry,
    SubscribeMsgPopupEvent,
    SubscribeMsgSentEntry,
    SubscribeMsgSentEvent,
    TemplateSendJobFinishEvent,
    UnsubscribeEvent,
    UserEnterTempSessionEvent,
    ViewEvent,
    ViewMiniProgramEvent,
)
from app.wechat.fields import snake_case
from app.wechat.identity import PushKey, pseudonym
from app.wechat.messages import (
    ImageMessage,
    LinkMessage,
    LocationMessage,
    Message,
    MiniProgramPageMessage,
    ShortVideoMessage,
    TextMessage,
    UnknownEvent,
    UnknownMessage,
    UserMessage,
    VideoMessage,
    VoiceMessage,
    parse_message,
)

ACCOUNT = "gh_0123456789ab"
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"
MP_ACCOUNT = "gh_97417a04a28d"
MP_OPENID = "o9AgO5Kd5ggOC-bXrbNODIiE3bGY"
BIG_MSG_ID = 6054768590064713728
TICKET = "gQH47joAAAAAAAAAASxodHRwOi8vd2VpeGluLnFxLmNvbS9xL2taZ2Z3TVRtNzJXV1Brb3ZhYmJJAAIEZ23sUw=="
MEDIA_ID = "MvJ3Rp0vS9dqX6c2K6Lh1c1G6DnYq3kXoJd9a2Ck4n5i"
THUMB_ID = "Zk8Q2vN4bH7rT1xW9yL3mC6pF0sD5gJ2aK8eR4tU7oI"
MD5_A = "1b5f7c23b5bf75682a53e7b6d163e185"
MD5_B = "0b2c5d7f1e3a4b6c8d9e0f1a2b3c4d5e"

#: The common fields of an Official Account push (XML: every leaf is a str).
OA: dict[str, Any] = {"to_user_name": ACCOUNT, "from_user_name": OPENID, "create_time": 1732406400}
#: The common fields of a Mini Program JSON push.
MP: dict[str, Any] = {
    "to_user_name": MP_ACCOUNT,
    "from_user_name": MP_OPENID,
    "create_time": 1714112445,
}


def xml_push(msg_type: str, **fields: Any) -> dict[str, Any]:
    common = {"ToUserName": ACCOUNT, "FromUserName": OPENID, "CreateTime": "1732406400"}
    return {**common, "MsgType": msg_type, **fields}


def xml_event(event: str, **fields: Any) -> dict[str, Any]:
    return xml_push("event", Event=event, **fields)


def json_push(msg_type: str, **fields: Any) -> dict[str, Any]:
    common = {"ToUserName": MP_ACCOUNT, "FromUserName": MP_OPENID, "CreateTime": 1714112445}
    return {**common, "MsgType": msg_type, **fields}


def json_event(event: str, **fields: Any) -> dict[str, Any]:
    return json_push("event", Event=event, **fields)


# -- naming --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "attribute"),
    [
        ("FromUserName", "from_user_name"),
        ("CreateTime", "create_time"),
        ("MsgId", "msg_id"),
        ("MsgID", "msg_id"),
        ("PicUrl", "pic_url"),
        ("Location_X", "location_x"),
        ("EventKey", "event_key"),
        ("MediaId16K", "media_id16k"),
        ("PicMd5Sum", "pic_md5sum"),
        ("HQMusicUrl", "hq_music_url"),
        ("bizmsgmenuid", "bizmsgmenuid"),
        ("publish_id", "publish_id"),
    ],
)
def test_snake_case(wire: str, attribute: str) -> None:
    assert snake_case(wire) == attribute


# -- normal messages -----------------------------------------------------------------------


def test_text_xml() -> None:
    fields = xml_push("text", Content="你好", MsgId="24812345678901234")
    assert parse_message(fields) == TextMessage(
        **OA, msg_type="text", raw=fields, msg_id=24812345678901234, content="你好"
    )


def test_text_json_with_numbers() -> None:
    fields = json_push("text", Content="hello", MsgId=24812345678901235)
    assert parse_message(fields) == TextMessage(
        **MP, msg_type="text", raw=fields, msg_id=24812345678901235, content="hello"
    )


def test_text_json_with_string_numbers() -> None:
    fields = {
        **json_push("text", Content="hi", MsgId="24812345678901236"),
        "CreateTime": "1620973045",
    }
    message = parse_message(fields)
    assert isinstance(message, TextMessage)
    assert (message.create_time, message.msg_id) == (1620973045, 24812345678901236)


@pytest.mark.parametrize("msg_id", [BIG_MSG_ID, str(BIG_MSG_ID)])
def test_msg_id_above_2_to_the_53_stays_exact(msg_id: int | str) -> None:
    message = parse_message(xml_push("text", Content="abcdteT", MsgId=msg_id))
    assert isinstance(message, TextMessage)
    assert message.msg_id == 6054768590064713728


def test_text_content_is_not_stripped() -> None:
    message = parse_message(xml_push("text", Content="  help\n", MsgId="1"))
    assert isinstance(message, TextMessage)
    assert message.content == "  help\n"


def test_text_from_msgmenu_and_article() -> None:
    fields = xml_push(
        "text", Content="满意", bizmsgmenuid="101", MsgId="2", MsgDataId="2247483658", Idx="1"
    )
    assert parse_message(fields) == TextMessage(
        **OA,
        msg_type="text",
        raw=fields,
        msg_id=2,
        msg_data_id=2247483658,
        idx=1,
        content="满意",
        bizmsgmenuid="101",
    )


def test_image() -> None:
    url = "http://mmbiz.qpic.cn/mmbiz_jpg/5rTq0OSnVYd6f4Yb0/0"
    fields = xml_push("image", PicUrl=url, MediaId=MEDIA_ID, MsgId="1234567890123456")
    assert parse_message(fields) == ImageMessage(
        **OA, msg_type="image", raw=fields, msg_id=1234567890123456, pic_url=url, media_id=MEDIA_ID
    )


def test_voice_with_recognition() -> None:
    fields = xml_push(
        "voice",
        MediaId=MEDIA_ID,
        Format="amr",
        Recognition="腾讯微信团队",
        MediaId16K=THUMB_ID,
        MsgId="1234567890123456",
    )
    assert parse_message(fields) == VoiceMessage(
        **OA,
        msg_type="voice",
        raw=fields,
        msg_id=1234567890123456,
        media_id=MEDIA_ID,
        format="amr",
        recognition="腾讯微信团队",
        media_id16k=THUMB_ID,
    )


def test_voice_without_recognition() -> None:
    message = parse_message(xml_push("voice", MediaId=MEDIA_ID, Format="speex", MsgId="3"))
    assert isinstance(message, VoiceMessage)
    assert (message.recognition, message.media_id16k) == ("", "")


def test_video() -> None:
    fields = xml_push("video", MediaId=MEDIA_ID, ThumbMediaId=THUMB_ID, MsgId="1234567890123456")
    assert parse_message(fields) == VideoMessage(
        **OA,
        msg_type="video",
        raw=fields,
        msg_id=1234567890123456,
        media_id=MEDIA_ID,
        thumb_media_id=THUMB_ID,
    )


def test_shortvideo() -> None:
    fields = xml_push("shortvideo", MediaId=MEDIA_ID, ThumbMediaId=THUMB_ID, MsgId="7")
    assert parse_message(fields) == ShortVideoMessage(
        **OA,
        msg_type="shortvideo",
        raw=fields,
        msg_id=7,
        media_id=MEDIA_ID,
        thumb_media_id=THUMB_ID,
    )


def test_location() -> None:
    fields = xml_push(
        "location",
        Location_X="23.134521",
        Location_Y="113.358803",
        Scale="20",
        Label="广州市海珠区客村艺苑路106号",
        MsgId="1234567890123456",
    )
    assert parse_message(fields) == LocationMessage(
        **OA,
        msg_type="location",
        raw=fields,
        msg_id=1234567890123456,
        location_x=23.134521,
        location_y=113.358803,
        scale=20,
        label="广州市海珠区客村艺苑路106号",
    )


def test_location_keeps_the_wire_strings_in_raw() -> None:
    message = parse_message(
        xml_push("location", Location_X="23.134520", Location_Y="113.3", Scale="20", MsgId="1")
    )
    assert message.raw["Location_X"] == "23.134520"


def test_link() -> None:
    fields = xml_push(
        "link",
        Title="公众平台官网链接",
        Description="公众平台官网链接",
        Url="https://mp.weixin.qq.com/",
        MsgId="1234567890123456",
    )
    assert parse_message(fields) == LinkMessage(
        **OA,
        msg_type="link",
        raw=fields,
        msg_id=1234567890123456,
        title="公众平台官网链接",
        description="公众平台官网链接",
        url="https://mp.weixin.qq.com/",
    )


def test_miniprogrampage_json() -> None:
    fields = json_push(
        "miniprogrampage",
        MsgId=7069230137349840000,
        Title="商品详情",
        AppId="wxb3e1c4a1d9f2e8c7",
        PagePath="pages/goods/detail?id=42",
        ThumbUrl="https://mmbiz.qpic.cn/mmbiz_jpg/thumb/0",
        ThumbMediaId=THUMB_ID,
    )
    assert parse_message(fields) == MiniProgramPageMessage(
        **MP,
        msg_type="miniprogrampage",
        raw=fields,
        msg_id=7069230137349840000,
        title="商品详情",
        app_id="wxb3e1c4a1d9f2e8c7",
        page_path="pages/goods/detail?id=42",
        thumb_url="https://mmbiz.qpic.cn/mmbiz_jpg/thumb/0",
        thumb_media_id=THUMB_ID,
    )


def test_msg_type_is_looked_up_case_insensitively_and_kept_as_sent() -> None:
    message = parse_message(xml_push("Text", Content="hi", MsgId="1"))
    assert isinstance(message, TextMessage)
    assert message.msg_type == "Text"


# -- events --------------------------------------------------------------------------------


def test_subscribe_plain() -> None:
    fields = xml_event("subscribe", EventKey="")
    assert parse_message(fields) == SubscribeEvent(
        **OA, msg_type="event", raw=fields, event="subscribe", event_key="", scene="", ticket=""
    )


def test_subscribe_through_a_qr_code() -> None:
    fields = xml_event("subscribe", EventKey="qrscene_123123", Ticket=TICKET)
    assert parse_message(fields) == SubscribeEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="subscribe",
        event_key="qrscene_123123",
        scene="123123",
        ticket=TICKET,
    )


def test_subscribe_without_event_key_field() -> None:
    message = parse_message(json_event("subscribe"))
    assert isinstance(message, SubscribeEvent)
    assert (message.event_key, message.scene, message.ticket) == ("", "", "")


def test_unsubscribe() -> None:
    fields = xml_event("unsubscribe", EventKey="")
    assert parse_message(fields) == UnsubscribeEvent(
        **OA, msg_type="event", raw=fields, event="unsubscribe"
    )


def test_scan() -> None:
    fields = xml_event("SCAN", EventKey="123123", Ticket=TICKET)
    assert parse_message(fields) == ScanEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="SCAN",
        event_key="123123",
        scene="123123",
        ticket=TICKET,
    )


def test_location_event() -> None:
    fields = xml_event(
        "LOCATION", Latitude="23.137466", Longitude="113.352425", Precision="119.385040"
    )
    assert parse_message(fields) == LocationEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="LOCATION",
        latitude=23.137466,
        longitude=113.352425,
        precision=119.38504,
    )


def test_click() -> None:
    fields = xml_event("CLICK", EventKey="MENU_HELP")
    assert parse_message(fields) == ClickEvent(
        **OA, msg_type="event", raw=fields, event="CLICK", event_key="MENU_HELP"
    )


def test_view() -> None:
    fields = xml_event("VIEW", EventKey="https://www.example.com/shop", MenuId="208379533")
    assert parse_message(fields) == ViewEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="VIEW",
        event_key="https://www.example.com/shop",
        menu_id="208379533",
    )


def test_view_miniprogram() -> None:
    fields = xml_event("view_miniprogram", EventKey="pages/index/index", MenuId="208379534")
    assert parse_message(fields) == ViewMiniProgramEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="view_miniprogram",
        event_key="pages/index/index",
        menu_id="208379534",
    )


@pytest.mark.parametrize(
    ("event", "cls"),
    [("scancode_push", ScanCodePushEvent), ("scancode_waitmsg", ScanCodeWaitMsgEvent)],
)
def test_scancode(event: str, cls: Any) -> None:
    info = {"ScanType": "qrcode", "ScanResult": "https://example.com/q/1"}
    fields = xml_event(event, EventKey="rselfmenu_0_1", ScanCodeInfo=info)
    assert parse_message(fields) == cls(
        **OA,
        msg_type="event",
        raw=fields,
        event=event,
        event_key="rselfmenu_0_1",
        scan_type="qrcode",
        scan_result="https://example.com/q/1",
    )


@pytest.mark.parametrize(
    ("event", "cls"),
    [
        ("pic_sysphoto", PicSysPhotoEvent),
        ("pic_photo_or_album", PicPhotoOrAlbumEvent),
        ("pic_weixin", PicWeixinEvent),
    ],
)
def test_pic_events_with_one_picture(event: str, cls: Any) -> None:
    info = {"Count": "1", "PicList": {"item": {"PicMd5Sum": MD5_A}}}
    fields = xml_event(event, EventKey="rselfmenu_1_0", SendPicsInfo=info)
    assert parse_message(fields) == cls(
        **OA,
        msg_type="event",
        raw=fields,
        event=event,
        event_key="rselfmenu_1_0",
        count=1,
        pic_md5sums=(MD5_A,),
    )


def test_pic_event_with_several_pictures() -> None:
    items = [{"PicMd5Sum": MD5_A}, {"PicMd5Sum": MD5_B}]
    info = {"Count": "2", "PicList": {"item": items}}
    message = parse_message(xml_event("pic_photo_or_album", EventKey="6", SendPicsInfo=info))
    assert isinstance(message, PicPhotoOrAlbumEvent)
    assert (message.count, message.pic_md5sums) == (2, (MD5_A, MD5_B))


def test_location_select() -> None:
    info = {
        "Location_X": "23",
        "Location_Y": "113",
        "Scale": "15",
        "Label": " 广州市海珠区客村艺苑路 106号",
        "Poiname": "",
    }
    fields = xml_event("location_select", EventKey="rselfmenu_2_0", SendLocationInfo=info)
    assert parse_message(fields) == LocationSelectEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="location_select",
        event_key="rselfmenu_2_0",
        location_x=23.0,
        location_y=113.0,
        scale=15,
        label=" 广州市海珠区客村艺苑路 106号",
        poiname="",
    )


@pytest.mark.parametrize("status", ["success", "failed:user block", "failed: system failed"])
def test_template_send_job_finish(status: str) -> None:
    fields = xml_event("TEMPLATESENDJOBFINISH", MsgID="200163836", Status=status)
    assert parse_message(fields) == TemplateSendJobFinishEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="TEMPLATESENDJOBFINISH",
        msg_id=200163836,
        status=status,
    )


def test_mass_send_job_finish() -> None:
    copyright_result = {
        "Count": "1",
        "ResultList": {"item": {"ArticleIdx": "1", "UserDeclareState": "0"}},
        "CheckState": "2",
    }
    url_result = {"Count": "1", "ResultList": {"item": {"ArticleIdx": "1", "ArticleUrl": "u"}}}
    fields = xml_event(
        "MASSSENDJOBFINISH",
        MsgID="1000001625",
        Status="send success",
        TotalCount="100",
        FilterCount="80",
        SentCount="75",
        ErrorCount="5",
        CopyrightCheckResult=copyright_result,
        ArticleUrlResult=url_result,
    )
    assert parse_message(fields) == MassSendJobFinishEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="MASSSENDJOBFINISH",
        msg_id=1000001625,
        status="send success",
        total_count=100,
        filter_count=80,
        sent_count=75,
        error_count=5,
        copyright_check_result=copyright_result,
        article_url_result=url_result,
    )


def test_publish_job_finish_success() -> None:
    detail = {"count": "1", "item": {"idx": "1", "article_url": "https://mp.weixin.qq.com/s/x"}}
    info = {
        "publish_id": "2247503051",
        "publish_status": "0",
        "article_id": "b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvyWFrXNU",
        "article_detail": detail,
    }
    fields = xml_event("PUBLISHJOBFINISH", PublishEventInfo=info)
    assert parse_message(fields) == PublishJobFinishEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="PUBLISHJOBFINISH",
        publish_id="2247503051",
        publish_status=0,
        article_id="b5O2OUs25HBxRceL7hfReg-U9QGeq9zQjiDvyWFrXNU",
        article_detail=detail,
    )


@pytest.mark.parametrize(("fail_idx", "expected"), [("1", (1,)), (["1", "2"], (1, 2))])
def test_publish_job_finish_failures(fail_idx: str | list[str], expected: tuple[int, ...]) -> None:
    info = {"publish_id": "2247503052", "publish_status": "2", "fail_idx": fail_idx}
    message = parse_message(xml_event("PUBLISHJOBFINISH", PublishEventInfo=info))
    assert isinstance(message, PublishJobFinishEvent)
    assert (message.publish_status, message.fail_idx) == (2, expected)


POPUP_ACCEPT = {
    "TemplateId": "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc",
    "SubscribeStatusString": "accept",
    "PopupScene": "2",
}
POPUP_REJECT = {
    "TemplateId": "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI",
    "SubscribeStatusString": "reject",
    "PopupScene": "2",
}


def test_subscribe_msg_popup_xml_with_two_entries() -> None:
    fields = xml_event(
        "subscribe_msg_popup_event",
        SubscribeMsgPopupEvent={"List": [POPUP_ACCEPT, POPUP_REJECT]},
    )
    assert parse_message(fields) == SubscribeMsgPopupEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="subscribe_msg_popup_event",
        entries=(
            SubscribeMsgPopupEntry("VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", "accept", 2),
            SubscribeMsgPopupEntry("9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI", "reject", 2),
        ),
    )


def test_subscribe_msg_popup_xml_with_one_entry() -> None:
    fields = xml_event("subscribe_msg_popup_event", SubscribeMsgPopupEvent={"List": POPUP_ACCEPT})
    message = parse_message(fields)
    assert isinstance(message, SubscribeMsgPopupEvent)
    assert message.entries == (
        SubscribeMsgPopupEntry("VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", "accept", 2),
    )


@pytest.mark.parametrize("popup_scene", ["0", 0])
def test_subscribe_msg_popup_json_array(popup_scene: str | int) -> None:
    entry = {
        "TemplateId": "hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68",
        "SubscribeStatusString": "accept",
        "PopupScene": popup_scene,
    }
    fields = {**json_event("subscribe_msg_popup_event", List=[entry]), "CreateTime": "1620973045"}
    assert parse_message(fields) == SubscribeMsgPopupEvent(
        **{**MP, "create_time": 1620973045},
        msg_type="event",
        raw=fields,
        event="subscribe_msg_popup_event",
        entries=(
            SubscribeMsgPopupEntry("hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68", "accept", 0),
        ),
    )


def test_subscribe_msg_popup_json_object() -> None:
    entry = {"TemplateId": "T1", "SubscribeStatusString": "reject", "PopupScene": "0"}
    message = parse_message(json_event("subscribe_msg_popup_event", List=entry))
    assert isinstance(message, SubscribeMsgPopupEvent)
    assert message.entries == (SubscribeMsgPopupEntry("T1", "reject", 0),)


def test_subscribe_msg_change_xml() -> None:
    entry = {
        "TemplateId": "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc",
        "SubscribeStatusString": "reject",
    }
    fields = xml_event("subscribe_msg_change_event", SubscribeMsgChangeEvent={"List": entry})
    assert parse_message(fields) == SubscribeMsgChangeEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="subscribe_msg_change_event",
        entries=(SubscribeMsgChangeEntry("VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", "reject"),),
    )


def test_subscribe_msg_change_json_array() -> None:
    entries = [
        {"TemplateId": "T1", "SubscribeStatusString": "reject"},
        {"TemplateId": "T2", "SubscribeStatusString": "reject"},
    ]
    message = parse_message(json_event("subscribe_msg_change_event", List=entries))
    assert isinstance(message, SubscribeMsgChangeEvent)
    assert message.entries == (
        SubscribeMsgChangeEntry("T1", "reject"),
        SubscribeMsgChangeEntry("T2", "reject"),
    )


def test_subscribe_msg_sent_xml() -> None:
    entry = {
        "TemplateId": "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc",
        "MsgID": "1700827132819554304",
        "ErrorCode": "0",
        "ErrorStatus": "success",
    }
    fields = xml_event("subscribe_msg_sent_event", SubscribeMsgSentEvent={"List": entry})
    assert parse_message(fields) == SubscribeMsgSentEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="subscribe_msg_sent_event",
        entries=(
            SubscribeMsgSentEntry(
                "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", 1700827132819554304, 0, "success"
            ),
        ),
    )


def test_subscribe_msg_sent_json_object_with_string_numbers() -> None:
    entry = {
        "TemplateId": "BEwX0BOT3MqK3Uc5oTU3CGBqzjpndk2jzUaPKF-0hgg",
        "MsgID": "1864323726461255680",
        "ErrorCode": "20004",
        "ErrorStatus": "user refuse to accept the msg",
    }
    message = parse_message(json_event("subscribe_msg_sent_event", List=entry))
    assert isinstance(message, SubscribeMsgSentEvent)
    assert message.entries == (
        SubscribeMsgSentEntry(
            "BEwX0BOT3MqK3Uc5oTU3CGBqzjpndk2jzUaPKF-0hgg",
            1864323726461255680,
            20004,
            "user refuse to accept the msg",
        ),
    )


def test_subscription_event_without_list_has_no_entries() -> None:
    message = parse_message(json_event("subscribe_msg_change_event"))
    assert isinstance(message, SubscribeMsgChangeEvent)
    assert message.entries == ()


@pytest.mark.parametrize(
    ("event", "cls"),
    [("kf_create_session", KfCreateSessionEvent), ("kf_close_session", KfCloseSessionEvent)],
)
def test_kf_session(event: str, cls: Any) -> None:
    fields = xml_event(event, KfAccount="test1@test")
    assert parse_message(fields) == cls(
        **OA, msg_type="event", raw=fields, event=event, kf_account="test1@test"
    )


def test_kf_switch_session() -> None:
    fields = xml_event("kf_switch_session", FromKfAccount="test1@test", ToKfAccount="test2@test")
    assert parse_message(fields) == KfSwitchSessionEvent(
        **OA,
        msg_type="event",
        raw=fields,
        event="kf_switch_session",
        from_kf_account="test1@test",
        to_kf_account="test2@test",
    )


def test_user_enter_tempsession_json() -> None:
    fields = json_event("user_enter_tempsession", SessionFrom="product_42")
    assert parse_message(fields) == UserEnterTempSessionEvent(
        **MP,
        msg_type="event",
        raw=fields,
        event="user_enter_tempsession",
        session_from="product_42",
    )


def test_debug_demo_from_the_mini_program_console() -> None:
    fields = {
        "ToUserName": "gh_97417a04a28d",
        "FromUserName": "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
        "CreateTime": 1714112445,
        "MsgType": "event",
        "Event": "debug_demo",
        "debug_str": "hello world",
    }
    assert parse_message(fields) == DebugDemoEvent(
        **MP, msg_type="event", raw=fields, event="debug_demo", debug_str="hello world"
    )


@pytest.mark.parametrize("event", ["scan", "Scan", "SCAN"])
def test_event_is_looked_up_case_insensitively_and_kept_as_sent(event: str) -> None:
    message = parse_message(xml_event(event, EventKey="123123", Ticket=TICKET))
    assert isinstance(message, ScanEvent)
    assert message.event == event


# -- through the codec: the shapes XML really gives ----------------------------------------


def test_pic_event_parsed_from_xml() -> None:
    body = (
        "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
        "<FromUserName><![CDATA[oAbCdEfGhIjKlMnOpQrStUvWxYz0]]></FromUserName>"
        "<CreateTime>1732406400</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[pic_weixin]]></Event><EventKey><![CDATA[6]]></EventKey>"
        "<SendPicsInfo><Count>2</Count><PicList>"
        f"<item><PicMd5Sum><![CDATA[{MD5_A}]]></PicMd5Sum></item>"
        f"<item><PicMd5Sum><![CDATA[{MD5_B}]]></PicMd5Sum></item>"
        "</PicList></SendPicsInfo></xml>"
    )
    message = parse_message(parse_xml(body.encode()))
    assert isinstance(message, PicWeixinEvent)
    assert (message.count, message.pic_md5sums) == (2, (MD5_A, MD5_B))


def test_popup_event_parsed_from_xml() -> None:
    body = (
        "<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName>\n"
        "<FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>\n"
        "<CreateTime>1610969440</CreateTime><MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[subscribe_msg_popup_event]]></Event>\n<SubscribeMsgPopupEvent>\n"
        "<List><TemplateId><![CDATA[T1]]></TemplateId>"
        "<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>"
        "<PopupScene>2</PopupScene></List>\n"
        "<List><TemplateId><![CDATA[T2]]></TemplateId>"
        "<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>"
        "<PopupScene>2</PopupScene></List>\n</SubscribeMsgPopupEvent></xml>"
    )
    message = parse_message(parse_xml(body.encode()))
    assert isinstance(message, SubscribeMsgPopupEvent)
    assert message.entries == (
        SubscribeMsgPopupEntry("T1", "accept", 2),
        SubscribeMsgPopupEntry("T2", "reject", 2),
    )


# -- unknown types and fields --------------------------------------------------------------


def test_unknown_msg_type() -> None:
    fields = xml_push("file", Title="report.pdf", FileKey="abc", MsgId="42")
    assert parse_message(fields) == UnknownMessage(**OA, msg_type="file", raw=fields, msg_id=42)


def test_unknown_msg_type_without_msg_id() -> None:
    message = parse_message(xml_push("file", Title="report.pdf"))
    assert isinstance(message, UnknownMessage)
    assert message.msg_id is None


def test_unknown_event() -> None:
    fields = xml_event("wxa_media_check", isrisky="0", trace_id="60ae120f-1d35fb83")
    assert parse_message(fields) == UnknownEvent(
        **OA, msg_type="event", raw=fields, event="wxa_media_check"
    )


def test_unknown_fields_survive_in_raw() -> None:
    message = parse_message(xml_push("text", Content="hi", MsgId="1", NewField={"a": "b"}))
    assert message.raw["NewField"] == {"a": "b"}


def test_raw_is_read_only() -> None:
    message = parse_message(xml_push("text", Content="hi", MsgId="1"))
    with pytest.raises(TypeError):
        message.raw["Content"] = "changed"  # type: ignore[index]


def test_messages_are_frozen() -> None:
    message = parse_message(xml_push("text", Content="hi", MsgId="1"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        message.create_time = 0  # type: ignore[misc]


@pytest.mark.parametrize("latitude", ["north", "", "nan", {"x": "1"}, True])
def test_unusable_type_field_reads_as_absent(latitude: object) -> None:
    fields = xml_event("LOCATION", Latitude=latitude, Longitude="113.352425", Precision="119.3")
    message = parse_message(fields)
    assert isinstance(message, LocationEvent)
    assert (message.latitude, message.longitude) == (None, 113.352425)
    assert message.raw["Latitude"] == latitude


def test_absent_type_fields_read_as_empty() -> None:
    message = parse_message(xml_event("pic_sysphoto"))
    assert isinstance(message, PicSysPhotoEvent)
    assert (message.event_key, message.count, message.pic_md5sums) == ("", None, ())


def test_number_in_a_text_field_becomes_text() -> None:
    message = parse_message(json_event("VIEW", EventKey="https://a.example/", MenuId=208379533))
    assert isinstance(message, ViewEvent)
    assert message.menu_id == "208379533"


# -- malformed common fields: one broken field per test ------------------------------------


def malformed(fields: dict[str, Any]) -> str:
    with pytest.raises(MalformedBody) as info:
        parse_message(fields)
    assert info.value.errcode == -40002
    return str(info.value)


PRINTABLE = "must be 1-128 printable characters"
WHOLE = "must be an integer of up to 20 digits"


def test_missing_msg_type() -> None:
    fields = xml_push("text", Content="hi", MsgId="1")
    del fields["MsgType"]
    assert malformed(fields) == f"push field MsgType {PRINTABLE}, got nothing"


def test_empty_msg_type() -> None:
    fields = xml_push("", Content="hi", MsgId="1")
    assert malformed(fields) == f"push field MsgType {PRINTABLE}, got a str of 0 characters"


def test_msg_type_not_a_string() -> None:
    fields = json_push("text", Content="hi", MsgId=1)
    fields["MsgType"] = 1
    assert malformed(fields) == f"push field MsgType {PRINTABLE}, got an int"


def test_missing_from_user_name() -> None:
    fields = xml_push("text", Content="hi", MsgId="1")
    del fields["FromUserName"]
    assert malformed(fields) == f"push field FromUserName {PRINTABLE}, got nothing"


def test_missing_to_user_name() -> None:
    fields = xml_push("text", Content="hi", MsgId="1")
    del fields["ToUserName"]
    assert malformed(fields) == f"push field ToUserName {PRINTABLE}, got nothing"


@pytest.mark.parametrize(
    ("create_time", "shown"),
    [
        ("1732406400.5", "a str of 12 characters"),
        ("", "a str of 0 characters"),
        (1.5, "a float"),
        (True, "a bool"),
        (None, "nothing"),
    ],
)
def test_create_time_not_an_integer(create_time: object, shown: str) -> None:
    fields = {**xml_push("text", Content="hi", MsgId="1"), "CreateTime": create_time}
    if create_time is None:
        del fields["CreateTime"]
    assert malformed(fields) == f"push field CreateTime {WHOLE}, got {shown}"


def test_event_without_event_name() -> None:
    fields = xml_push("event", EventKey="MENU_HELP")
    assert malformed(fields) == f"push field Event {PRINTABLE}, got nothing"


def test_refusal_describes_the_value_and_never_repeats_it() -> None:
    fields = {**xml_push("text", Content="hi", MsgId="1"), "CreateTime": "oSecret" * 10}
    assert malformed(fields) == (
        "push field CreateTime must be an integer of up to 20 digits, got a str of 70 characters"
    )


@pytest.mark.parametrize("value", ["1" * 5000, "9" * 4301, "1" * 21])
def test_create_time_of_too_many_digits_is_refused_not_raised(value: str) -> None:
    # int() refuses over 4,300 digits with ValueError, and is slow long before that.
    fields = {**xml_push("text", Content="hi", MsgId="1"), "CreateTime": value}
    assert "must be an integer of up to 20 digits" in malformed(fields)


@pytest.mark.parametrize("name", ["FromUserName", "ToUserName", "MsgType"])
@pytest.mark.parametrize("value", ["o\nforged log line", "x" * 129, "\x00"])
def test_identifying_fields_must_be_short_printable_text(name: str, value: str) -> None:
    fields = {**xml_push("text", Content="hi", MsgId="1"), name: value}
    message = malformed(fields)
    assert message.startswith(f"push field {name} must be 1-128 printable characters, got a str")
    assert value not in message


# -- message ids and push_key --------------------------------------------------------------


@pytest.mark.parametrize("value", ["9" * 4301, "free text with spaces", "a\nb"])
def test_unusable_msg_id_reads_as_none_and_keys_by_content(value: str) -> None:
    message = parse_message(xml_push("text", Content="hi", MsgId=value))
    assert isinstance(message, TextMessage)
    assert message.msg_id is None
    assert message.push_key.kind == "push"


def test_string_msg_id_is_kept_as_given() -> None:
    msg_id = "49d72d67b16d115e7935ac386f2f0fa3_1555684067"
    message = parse_message(xml_push("text", Content="hi", MsgId=msg_id))
    assert isinstance(message, TextMessage)
    assert message.msg_id == msg_id
    assert message.push_key.detail == msg_id


def test_msg_id_spelled_msgid_upper_is_read() -> None:
    # WxJava parses a text message whose id arrives as <MsgID>.
    fields = {k: v for k, v in xml_push("text", Content="hi").items() if k != "MsgId"}
    message = parse_message({**fields, "MsgID": "1234567"})
    assert isinstance(message, TextMessage)
    assert message.msg_id == 1234567


def test_text_message_without_any_id_is_accepted_and_keyed_by_content() -> None:
    fields = {k: v for k, v in xml_push("text", Content="hi").items() if k != "MsgId"}
    one = parse_message(fields)
    again = parse_message(dict(fields))
    other = parse_message({**fields, "Content": "ho"})
    assert isinstance(one, TextMessage) and one.msg_id is None
    assert one.push_key == again.push_key
    assert one.push_key != other.push_key


def test_push_key_of_a_message_is_user_and_msg_id() -> None:
    message = parse_message(xml_push("text", Content="hi", MsgId=str(BIG_MSG_ID)))
    assert message.push_key == PushKey("msg", OPENID, "6054768590064713728", 1732406400)


def test_push_key_stored_and_logged_forms_hold_no_openid() -> None:
    key = parse_message(xml_push("text", Content="hi", MsgId="5")).push_key
    assert OPENID not in key.stored and OPENID not in key.logged and OPENID not in str(key)
    assert key.logged == f"msg:{pseudonym(OPENID)}:5"
    assert len(key.stored) == len("1732406400:msg:") + 32


def test_same_msg_id_from_two_users_gives_two_keys() -> None:
    one = parse_message(xml_push("text", Content="hi", MsgId="5"))
    other = parse_message({**xml_push("text", Content="hi", MsgId="5"), "FromUserName": "oOther"})
    assert one.push_key.stored != other.push_key.stored


def test_stored_push_keys_sort_by_create_time_and_keep_one_length() -> None:
    """A store that keeps keys in order files new pushes together; a hostile CreateTime,
    negative or of twenty digits, changes neither the length nor the OpenID's absence."""
    times = ["1732406400", "1732406401", "1800000000", "-5", "9" * 20]
    keys = [
        parse_message({**xml_push("text", Content="hi", MsgId=str(n)), "CreateTime": t})
        for n, t in enumerate(times)
    ]
    stored = [message.push_key.stored for message in keys]
    assert stored[:3] == sorted(stored[:3])
    assert stored[3].startswith("0000000000:") and stored[4].startswith("9999999999:")
    assert {len(key) for key in stored} == {len("1732406400:msg:") + 32}


def test_push_key_of_an_event_is_time_and_content() -> None:
    message = parse_message(xml_event("CLICK", EventKey="MENU_HELP"))
    again = parse_message(xml_event("CLICK", EventKey="MENU_HELP"))
    assert message.push_key.kind == "event"
    assert message.push_key.detail.startswith("1732406400:")
    assert message.push_key == again.push_key


def test_subscribe_and_click_in_one_second_differ() -> None:
    subscribe = parse_message(xml_event("subscribe", EventKey=""))
    click = parse_message(xml_event("CLICK", EventKey="MENU_HELP"))
    assert subscribe.push_key != click.push_key


def test_two_template_results_in_one_second_differ() -> None:
    one = parse_message(xml_event("TEMPLATESENDJOBFINISH", MsgID="200163836", Status="success"))
    two = parse_message(xml_event("TEMPLATESENDJOBFINISH", MsgID="200163837", Status="success"))
    assert one.push_key != two.push_key


def test_media_checks_of_one_second_with_other_trace_ids_differ() -> None:
    # Three wxa_media_check pushes from one system sender in one second were merged into one.
    keys = {
        parse_message(json_event("wxa_media_check", trace_id=f"trace-{n}", status_code=0)).push_key
        for n in range(3)
    }
    assert len(keys) == 3


def test_push_key_of_an_unknown_message() -> None:
    with_id = parse_message(xml_push("file", MsgId="42"))
    without_id = parse_message(xml_push("file"))
    assert with_id.push_key == PushKey("msg", OPENID, "42", 1732406400)
    assert without_id.push_key.kind == "push"
    assert without_id.push_key.detail.startswith("1732406400:")


@pytest.mark.parametrize(
    "fields",
    [
        xml_push("text", Content="hi", MsgId="1"),
        xml_push("image", PicUrl="u", MediaId=MEDIA_ID, MsgId="1"),
        xml_push("location", Location_X="1", Location_Y="2", Scale="3", MsgId="1"),
        xml_push("file", MsgId="1"),
    ],
)
def test_user_messages(fields: dict[str, Any]) -> None:
    assert parse_message(fields).is_user_message is True


@pytest.mark.parametrize(
    "fields",
    [xml_event("subscribe", EventKey=""), xml_event("CLICK", EventKey="K"), xml_event("x_new")],
)
def test_events_are_not_user_messages(fields: dict[str, Any]) -> None:
    assert parse_message(fields).is_user_message is False


# -- the registry covers PROTOCOL.md §5 ----------------------------------------------------


MESSAGE_CLASSES = {
    "text": TextMessage,
    "image": ImageMessage,
    "voice": VoiceMessage,
    "video": VideoMessage,
    "shortvideo": ShortVideoMessage,
    "location": LocationMessage,
    "link": LinkMessage,
    "miniprogrampage": MiniProgramPageMessage,
}
EVENT_CLASSES = {
    "subscribe": SubscribeEvent,
    "unsubscribe": UnsubscribeEvent,
    "SCAN": ScanEvent,
    "LOCATION": LocationEvent,
    "CLICK": ClickEvent,
    "VIEW": ViewEvent,
    "view_miniprogram": ViewMiniProgramEvent,
    "scancode_push": ScanCodePushEvent,
    "scancode_waitmsg": ScanCodeWaitMsgEvent,
    "pic_sysphoto": PicSysPhotoEvent,
    "pic_photo_or_album": PicPhotoOrAlbumEvent,
    "pic_weixin": PicWeixinEvent,
    "location_select": LocationSelectEvent,
    "TEMPLATESENDJOBFINISH": TemplateSendJobFinishEvent,
    "MASSSENDJOBFINISH": MassSendJobFinishEvent,
    "PUBLISHJOBFINISH": PublishJobFinishEvent,
    "subscribe_msg_popup_event": SubscribeMsgPopupEvent,
    "subscribe_msg_change_event": SubscribeMsgChangeEvent,
    "subscribe_msg_sent_event": SubscribeMsgSentEvent,
    "kf_create_session": KfCreateSessionEvent,
    "kf_close_session": KfCloseSessionEvent,
    "kf_switch_session": KfSwitchSessionEvent,
    "user_enter_tempsession": UserEnterTempSessionEvent,
    "debug_demo": DebugDemoEvent,
}


@pytest.mark.parametrize(("msg_type", "cls"), MESSAGE_CLASSES.items())
def test_every_message_type_has_its_class(msg_type: str, cls: type[Message]) -> None:
    message = parse_message(xml_push(msg_type, MsgId="1"))
    assert type(message) is cls
    assert isinstance(message, UserMessage)
    assert cls.__doc__ is not None and "PROTOCOL.md §5" in cls.__doc__


@pytest.mark.parametrize(("event", "cls"), EVENT_CLASSES.items())
def test_every_event_has_its_class(event: str, cls: type[Message]) -> None:
    message = parse_message(xml_event(event))
    assert type(message) is cls
    assert cls.__doc__ is not None and "PROTOCOL.md §5" in cls.__doc__


def test_classes_use_slots() -> None:
    message = parse_message(xml_push("text", Content="hi", MsgId="1"))
    assert not hasattr(message, "__dict__")
