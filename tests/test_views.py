"""The callback URL through HTTP: handshake, pushes in every mode and format, every refusal."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

from app import create_app, views
from app.testing import WeChatClient
from app.wechat import codec
from app.wechat.codec import BodyFormat
from app.wechat.envelope import Mode
from app.wechat.replies import ImageReply, TextReply, TransferCustomerServiceReply, VoiceReply
from app.wechat.signature import sign
from config import AccountType, Settings
from tests import service_handlers
from tests.conftest import AES_KEY, APPID, TOKEN
from tests.peer import WeChatPeer


def handshake_query(**overrides: str) -> dict[str, str]:
    query = {"timestamp": str(int(time.time())), "nonce": "1234567890", "echostr": "74958371"}
    query["signature"] = sign(TOKEN, query["timestamp"], query["nonce"])
    return {**query, **overrides}


@pytest.fixture
def handlers_app(settings: Settings) -> Iterator[Flask]:
    app = create_app(dataclasses.replace(settings, handlers="tests.service_handlers"))
    yield app
    app.extensions["wechat"].close()


# -- handshake ------------------------------------------------------------------------------


def test_handshake_echoes_echostr_exactly(client: FlaskClient) -> None:
    response = client.get("/wx", query_string=handshake_query())
    assert response.status_code == 200
    assert response.data == b"74958371"
    assert response.mimetype == "text/plain"


def test_handshake_official_vector_with_clock_check_off(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, token="AAAAA", timestamp_tolerance=0))
    query = {
        "signature": "f464b24fc39322e44b38aa78f5edd27bd1441696",
        "echostr": "4375120948345356249",
        "timestamp": "1714036504",
        "nonce": "1514711492",
    }
    assert app.test_client().get("/wx", query_string=query).data == b"4375120948345356249"
    app.extensions["wechat"].close()


@pytest.mark.parametrize(
    ("query", "status", "reason"),
    [
        (handshake_query(signature="0" * 40), 403, "SignatureError"),
        (handshake_query(timestamp="1000000000"), 403, "SignatureError"),
        ({"timestamp": "1", "nonce": "2", "echostr": "3"}, 400, "MissingParameter"),
        ({k: v for k, v in handshake_query().items() if k != "echostr"}, 400, "MissingParameter"),
    ],
)
def test_handshake_refusals(
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    query: dict[str, str],
    status: int,
    reason: str,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = client.get("/wx", query_string=query)
    assert response.status_code == status
    assert reason in response.get_data(as_text=True)
    assert any(reason in record.getMessage() for record in caplog.records)


def test_stale_handshake_is_refused(client: FlaskClient) -> None:
    old = str(int(time.time()) - 301)
    query = handshake_query(timestamp=old)
    query["signature"] = sign(TOKEN, old, query["nonce"])
    response = client.get("/wx", query_string=query)
    assert response.status_code == 403
    assert b"StaleTimestamp" in response.data


def test_other_paths_and_methods(client: FlaskClient) -> None:
    assert client.get("/").status_code == 404
    assert client.get("/wx/").status_code == 404
    assert client.put("/wx").status_code == 405
    assert client.delete("/wx").status_code == 405


def test_path_is_configurable(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, path="/hooks/wechat"))
    client = app.test_client()
    assert client.get("/hooks/wechat", query_string=handshake_query()).data == b"74958371"
    assert client.get("/wx", query_string=handshake_query()).status_code == 404
    app.extensions["wechat"].close()


# -- the query ------------------------------------------------------------------------------

QUERIES = [
    "",
    "signature=0a1b&timestamp=1714036504&nonce=1514711492&encrypt_type=aes&msg_signature=f4",
    "a=1&a=2",
    "a&b=&=x&&c=1&",
    "a=b=c",
    "a=1;b=2",
    "a=%41&b=%e4%bd%a0&c=%zz&d=%ff",
    "a=+x&b+c=1",
    "a=\xe4\xbd\xa0",
    "a=\xff",
]


def first_values(app: Flask, raw: str, read: Callable[[], Mapping[str, str]]) -> object:
    """Each parameter's first value as ``read`` gives it, or the exception it raises."""
    with app.test_request_context("/wx", environ_overrides={"QUERY_STRING": raw}):
        try:
            query = read()
            return {name: query[name] for name in query}
        except Exception as e:
            return type(e)


@pytest.mark.parametrize("raw", QUERIES)
def test_the_query_reads_as_request_args(app: Flask, raw: str) -> None:
    assert first_values(app, raw, views._query) == first_values(app, raw, lambda: request.args)


def test_random_queries_read_as_request_args(app: Flask) -> None:
    rng = random.Random(7)
    for _ in range(2000):
        raw = "".join(rng.choices("ab=&;%4F+ \xe4\xff", k=rng.randrange(12)))
        expected = first_values(app, raw, lambda: request.args)
        assert first_values(app, raw, views._query) == expected, raw


def test_wechat_queries_are_split_without_werkzeug(app: Flask) -> None:
    with app.test_request_context("/wx", environ_overrides={"QUERY_STRING": QUERIES[1]}):
        query = views._query()
        assert query is not request.args
        assert query["encrypt_type"] == "aes"


# -- pushes in every mode and format ---------------------------------------------------------


@pytest.mark.parametrize("mode", list(Mode))
def test_demo_echoes_text_in_every_mode(app: Flask, mode: Mode) -> None:
    wechat = WeChatClient(app, mode=mode)
    result = wechat.text("你好 ]]> <xml>")
    assert result.status == 200
    assert result.reply == TextReply("你好 ]]> <xml>")
    assert result.fields is not None
    assert result.fields["ToUserName"] == wechat.user
    assert result.fields["FromUserName"] == wechat.account
    encrypted = b"<Encrypt>" in result.body
    assert encrypted is (mode is not Mode.PLAINTEXT)


def test_demo_echoes_image_and_voice_by_media_id(wechat: WeChatClient) -> None:
    assert wechat.image("MEDIA_1").reply == ImageReply("MEDIA_1")
    assert wechat.voice("MEDIA_2", recognition="你好").reply == VoiceReply("MEDIA_2")


def test_demo_welcomes_followers_and_ignores_the_rest(wechat: WeChatClient) -> None:
    welcome = wechat.subscribe()
    assert isinstance(welcome.reply, TextReply)
    assert "WX_HANDLERS" in welcome.reply.content
    assert wechat.event("CLICK", "MENU").success
    assert wechat.event("unsubscribe").success
    assert wechat.message("location", Location_X="23.1", Location_Y="113.3").success


def test_unknown_types_and_fields_answer_success(wechat: WeChatClient) -> None:
    assert wechat.message("hologram", Depth="3", Nested={"A": "1"}).success
    assert wechat.event("brand_new_event", Extra="x").success


@pytest.mark.parametrize("mode", list(Mode))
def test_json_pushes_are_a_mini_program_and_get_success(app: Flask, mode: Mode) -> None:
    wechat = WeChatClient(app, mode=mode, body_format=BodyFormat.JSON)
    result = wechat.text("hello")
    assert result.status == 200
    assert result.body == b"success"


def test_mini_program_transfer_is_answered_in_json(handlers_app: Flask) -> None:
    wechat = WeChatClient(handlers_app, body_format=BodyFormat.JSON)
    result = wechat.text("transfer")
    assert result.status == 200
    assert result.body.startswith(b'{"Encrypt":')
    assert result.reply == TransferCustomerServiceReply("agent@test")


def test_mini_program_account_answers_xml_content_with_success(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, account_type=AccountType.MINIPROGRAM))
    assert WeChatClient(app).text("hello").body == b"success"
    app.extensions["wechat"].close()


def test_encrypted_reply_envelope_has_the_four_fields(wechat: WeChatClient) -> None:
    result = wechat.text("hi")
    envelope = codec.parse_xml(result.body)
    assert list(envelope) == ["Encrypt", "MsgSignature", "TimeStamp", "Nonce"]
    assert envelope["MsgSignature"] == sign(
        TOKEN, envelope["TimeStamp"], envelope["Nonce"], envelope["Encrypt"]
    )


def test_compatible_mode_uses_only_the_decrypted_message(app: Flask) -> None:
    wechat = WeChatClient(app, mode=Mode.COMPATIBLE)
    fields = {"ToUserName": "gh_0123456789ab", "FromUserName": "oUser", "CreateTime": 1}
    push = {**fields, "MsgType": "text", "Content": "real", "MsgId": 1}
    query, body = wechat.build(push)
    tampered = body.replace(b"<Content><![CDATA[real]]>", b"<Content><![CDATA[forged]]>")
    assert tampered != body
    result = wechat.post(query, tampered)
    assert result.reply == TextReply("real")


# -- the handler API through HTTP ------------------------------------------------------------


def test_user_handlers_are_loaded_from_wx_handlers(handlers_app: Flask) -> None:
    wechat = WeChatClient(handlers_app)
    assert wechat.text("hello").reply == TextReply("echo: hello")
    assert wechat.event("CLICK", "MENU_HELP").reply == TextReply("clicked MENU_HELP")


@pytest.mark.parametrize("content", ["boom", "wrong type", "three articles"])
def test_a_failing_handler_is_logged_and_answered_success(
    handlers_app: Flask, caplog: pytest.LogCaptureFixture, content: str
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.lifecycle.service"):
        result = WeChatClient(handlers_app).text(content)
    assert result.success
    failures = [r for r in caplog.records if "failed on text" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "tests.service_handlers." in failures[0].getMessage()


def test_a_failing_event_handler_is_logged_with_the_event_and_its_time(
    handlers_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="app.lifecycle.service"):
        result = WeChatClient(handlers_app).event("CLICK", "BOOM", CreateTime=1700000000)
    assert result.success
    (failure,) = [r for r in caplog.records if "failed on" in r.getMessage()]
    assert failure.getMessage().endswith("boom_event failed on event:CLICK 1700000000")
    assert failure.exc_info is not None


def test_transfer_to_customer_service(handlers_app: Flask) -> None:
    result = WeChatClient(handlers_app).text("transfer")
    assert result.reply == TransferCustomerServiceReply("agent@test")


def test_transfer_for_an_event_is_refused(handlers_app: Flask) -> None:
    assert WeChatClient(handlers_app).event("CLICK", "TRANSFER").success


def test_content_for_a_non_chat_event_is_not_sent(handlers_app: Flask) -> None:
    assert WeChatClient(handlers_app).event("TEMPLATESENDJOBFINISH", Status="success").success


def test_a_repeated_push_runs_its_handler_once_and_gets_the_same_bytes(
    handlers_app: Flask,
) -> None:
    wechat = WeChatClient(handlers_app)
    push = {
        "ToUserName": wechat.account,
        "FromUserName": "oRepeat",
        "CreateTime": int(time.time()),
        "MsgType": "text",
        "Content": "once",
        "MsgId": 777001,
    }
    query, body = wechat.build(push)
    answers = [wechat.post(query, body) for _ in range(3)]
    assert service_handlers.calls["msg:oRepeat:777001"] == 1
    assert answers[0].reply == TextReply("echo: once")
    assert {a.body for a in answers} == {answers[0].body}


# -- refusals --------------------------------------------------------------------------------


def _refused(
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    query: dict[str, str],
    body: bytes,
    **request: Any,
) -> tuple[int, str]:
    with caplog.at_level(logging.WARNING, logger="app.views"):
        response = client.post("/wx", query_string=query, data=body, **request)
    lines = [r.getMessage() for r in caplog.records if r.name == "app.views"]
    assert len(lines) == 1, lines
    for secret in (TOKEN, AES_KEY):
        assert secret not in lines[0]
        assert secret not in response.get_data(as_text=True)
    return response.status_code, lines[0]


def _safe_push(wechat: WeChatClient) -> tuple[dict[str, str], bytes]:
    return wechat.build(
        {
            "ToUserName": wechat.account,
            "FromUserName": "oUser",
            "CreateTime": int(time.time()),
            "MsgType": "text",
            "Content": "x",
            "MsgId": 1,
        }
    )


def _resign(query: dict[str, str], encrypted: str) -> dict[str, str]:
    signed = sign(TOKEN, query["timestamp"], query["nonce"], encrypted)
    return {**query, "msg_signature": signed}


def test_bad_signature(
    client: FlaskClient, wechat: WeChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    query, body = _safe_push(wechat)
    status, line = _refused(client, caplog, {**query, "signature": "f" * 40}, body)
    assert (status, "SignatureError") == (403, line.split("(")[-1].rstrip(")"))


@pytest.mark.parametrize(
    ("peer", "real_ip", "named"),
    [
        ("127.0.0.1", "203.0.113.9", "from 203.0.113.9 via 127.0.0.1:"),
        ("::1", "2001:db8::7", "from 2001:db8::7 via ::1:"),
        ("127.0.0.1", "", "from 127.0.0.1:"),
        ("198.51.100.4", "203.0.113.9", "from 198.51.100.4:"),  # not a proxy of this host
        ("127.0.0.1", "203.0.113.9 forged line", "from 127.0.0.1:"),  # not an address
    ],
)
def test_a_refusal_names_the_client_behind_the_local_proxy(
    client: FlaskClient,
    wechat: WeChatClient,
    caplog: pytest.LogCaptureFixture,
    peer: str,
    real_ip: str,
    named: str,
) -> None:
    query, body = _safe_push(wechat)
    headers = {"X-Real-IP": real_ip} if real_ip else {}
    _, line = _refused(
        client,
        caplog,
        {**query, "signature": "f" * 40},
        body,
        headers=headers,
        environ_base={"REMOTE_ADDR": peer},
    )
    assert named in line


def test_a_proxy_in_another_container_is_trusted_when_its_network_is_named(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """WX_TRUSTED_PROXIES names the network nginx connects from in a container setup; a peer
    outside it is still not believed."""
    proxies = (ipaddress.ip_network("172.16.0.0/12"),)
    app = create_app(dataclasses.replace(settings, trusted_proxies=proxies))
    client, wechat = app.test_client(), WeChatClient(app)
    query, body = _safe_push(wechat)
    forged = {**query, "signature": "f" * 40}
    for peer, named in (
        ("172.18.0.5", "from 203.0.113.9 via 172.18.0.5:"),
        ("127.0.0.1", "from 127.0.0.1:"),  # loopback is no longer named
        ("198.51.100.4", "from 198.51.100.4:"),
    ):
        caplog.clear()
        _, line = _refused(
            client,
            caplog,
            forged,
            body,
            headers={"X-Real-IP": "203.0.113.9"},
            environ_base={"REMOTE_ADDR": peer},
        )
        assert named in line
    app.extensions["wechat"].close()


def test_bad_msg_signature(
    client: FlaskClient, wechat: WeChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    query, body = _safe_push(wechat)
    status, line = _refused(client, caplog, {**query, "msg_signature": "0" * 40}, body)
    assert status == 403
    assert "msg_signature does not match" in line


def test_stale_push(
    client: FlaskClient, wechat: WeChatClient, caplog: pytest.LogCaptureFixture
) -> None:
    query, body = _safe_push(wechat)
    old = str(int(query["timestamp"]) - 1000)
    query = {**query, "timestamp": old, "signature": sign(TOKEN, old, query["nonce"])}
    status, line = _refused(client, caplog, query, body)
    assert status == 403
    assert "StaleTimestamp" in line


def test_missing_query(client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    status, line = _refused(client, caplog, {}, b"<xml/>")
    assert status == 400
    assert "signature, timestamp, nonce" in line


def test_plaintext_refused_when_encryption_is_required(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(dataclasses.replace(settings, require_encryption=True))
    query, body = _safe_push(WeChatClient(app, mode=Mode.PLAINTEXT))
    status, line = _refused(app.test_client(), caplog, query, body)
    assert status == 403
    assert "EncryptionRequired" in line
    assert WeChatClient(app).text("still fine in safe mode").reply is not None
    app.extensions["wechat"].close()


def test_a_push_no_handler_takes_is_answered_without_a_handler_thread(
    handlers_app: Flask,
) -> None:
    """A LOCATION report with no handler for it (every 5 s per user where an account asks for
    them) costs no crossing to a handler thread: nothing of the user's would run there."""

    def handler_threads() -> int:
        return sum(t.name.startswith("wx-handler") for t in threading.enumerate())

    wechat = WeChatClient(handlers_app, user="oWhere")
    before = handler_threads()
    location = {"Latitude": "23.137466", "Longitude": "113.352425", "Precision": "119.385040"}
    assert wechat.event("LOCATION", **location).body == b"success"
    assert handler_threads() == before
    assert wechat.text("hi").reply == TextReply("echo: hi")  # a handler: its thread starts
    assert handler_threads() == before + 1


def test_a_signed_url_carries_one_plaintext_push_and_no_forged_other(
    handlers_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever read a plaintext push's signed URL may send that push again (a retry, answered
    with the same bytes), but not another body on it: the signature covers no body."""
    wechat = WeChatClient(handlers_app, mode=Mode.PLAINTEXT, user="oReplayed")
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "hello"}))
    first = wechat.post(query, body)
    assert first.reply == TextReply("echo: hello")
    forged = wechat.build(wechat.complete({"MsgType": "text", "Content": "boom"}))[1]
    caplog.clear()

    status, line = _refused(handlers_app.test_client(), caplog, query, forged)

    assert status == 403
    assert "ReusedURL" in line
    assert _runs("oReplayed") == 1  # hello's; the forged push reached no handler
    assert wechat.post(query, body).body == first.body  # the push itself, again: a retry
    assert _runs("oReplayed") == 1
    assert wechat.text("again").reply == TextReply("echo: again")  # a URL of its own
    assert _runs("oReplayed") == 2


def _runs(user: str) -> int:
    return sum(n for key, n in service_handlers.calls.items() if key.startswith(f"msg:{user}:"))


@pytest.mark.parametrize(
    ("encrypted", "reason"),
    [
        ("not base64!", "BadBase64"),
        ("QUJD", "BadBase64"),  # 3 bytes: not whole AES blocks
        ("A" * 64, "DecryptError"),  # 48 zero bytes decrypt to garbage padding
    ],
)
def test_corrupt_ciphertext(
    client: FlaskClient,
    wechat: WeChatClient,
    caplog: pytest.LogCaptureFixture,
    encrypted: str,
    reason: str,
) -> None:
    query, _ = _safe_push(wechat)
    body = codec.render_xml({"ToUserName": wechat.account, "Encrypt": encrypted})
    status, line = _refused(client, caplog, _resign(query, encrypted), body)
    assert status == 400
    assert reason in line


def test_wrong_appid(
    client: FlaskClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    other = create_app(dataclasses.replace(settings, appid="wx0000000000000000"))
    query, body = _safe_push(WeChatClient(other))
    other.extensions["wechat"].close()
    status, line = _refused(client, caplog, query, body)
    assert status == 400
    assert "'wx0000000000000000' but WX_APPID is 'wx1a2b3c4d5e6f7a8b'" in line


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<xml><ToUserName>", "not well formed"),
        (b"hello", "neither XML"),
        (b"{not json", "JSON is not valid"),
        (b"[1, 2]", "neither XML"),
        (b'{"a": ' * 5000 + b"1" + b"}" * 5000, "JSON is not valid"),
        (b"<notxml/>", "not <xml>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><xml><C>&b;</C></xml>',
            "DOCTYPE",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<xml><C>&x;</C></xml>",
            "DOCTYPE",
        ),
        (b"<xml><MsgType>text</MsgType></xml>", "MalformedBody"),
    ],
)
def test_malformed_and_hostile_bodies(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, body: bytes, reason: str
) -> None:
    query = handshake_query()
    del query["echostr"]
    status, line = _refused(client, caplog, query, body)
    assert status == 400
    assert reason in line


def test_encrypted_push_without_a_key(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    keyed = create_app(settings)
    query, body = _safe_push(WeChatClient(keyed))
    keyed.extensions["wechat"].close()
    plain_only = create_app(dataclasses.replace(settings, aes_key="", appid=""))
    status, line = _refused(plain_only.test_client(), caplog, query, body)
    plain_only.extensions["wechat"].close()
    assert status == 400
    assert "WX_AES_KEY is not set" in line


def test_oversize_body(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(dataclasses.replace(settings, max_body=1024))
    query = handshake_query()
    status, line = _refused(app.test_client(), caplog, query, b"<xml>" + b"a" * 2000 + b"</xml>")
    app.extensions["wechat"].close()
    assert status == 413
    assert "WX_MAX_BODY=1024" in line


def test_an_internal_fault_is_logged_and_answered_success(
    app: Flask,
    wechat: WeChatClient,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug of ours")

    monkeypatch.setattr(app.extensions["wechat"].service(), "answer", broken)
    with caplog.at_level(logging.ERROR, logger="app.views"):
        result = wechat.text("hi")
    assert (result.status, result.body) == (200, b"success")
    assert any(r.exc_info and "internal error" in r.getMessage() for r in caplog.records)


# -- hostile values inside a correctly signed push: a 4xx with a reason, never the catch-all ----


def _signed(body: bytes, mode: str, body_format: str) -> tuple[dict[str, str], bytes]:
    peer = WeChatPeer(TOKEN, AES_KEY, APPID)
    return peer.push(
        body, mode=mode, body_format=body_format, timestamp=int(time.time()), nonce="42", openid=""
    )


def _post(app: Flask, query: dict[str, str], body: bytes) -> tuple[int, str]:
    response = app.test_client().post("/wx", query_string=query, data=body)
    return response.status_code, response.get_data(as_text=True)


def _no_internal_error(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "reached the catch-all"


JSON_TEXT = (
    '{"ToUserName":"gh_1","FromUserName":%s,"CreateTime":%s,"MsgType":"text",'
    '"Content":"hi","MsgId":%s}'
)


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (JSON_TEXT % ('"\\ud800"', "1", "1"), "surrogate"),
        (JSON_TEXT % ('"oUser"', "1" * 5000, "1"), "too many digits"),
        (JSON_TEXT % ('"oUser"', '"' + "1" * 5000 + '"', "1"), "CreateTime"),
        (JSON_TEXT % ('"o\\nforged"', "1", "1"), "FromUserName"),
    ],
    ids=["surrogate-sender", "huge-int", "huge-digit-string", "newline-sender"],
)
def test_hostile_json_values_are_400(
    handlers_app: Flask, caplog: pytest.LogCaptureFixture, mode: str, body: str, reason: str
) -> None:
    query, raw = _signed(body.encode(), mode, "json")
    with caplog.at_level(logging.INFO):
        status, answer = _post(handlers_app, query, raw)
    assert (status, "MalformedBody") == (400, answer.split(":")[0].split(" ")[1])
    assert reason in answer
    _no_internal_error(caplog)


def test_a_lone_surrogate_in_the_outer_encrypt_is_400(
    handlers_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    timestamp, nonce = str(int(time.time())), "42"
    query = {
        "signature": sign(TOKEN, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "encrypt_type": "aes",
        "msg_signature": "0" * 40,
    }
    with caplog.at_level(logging.INFO):
        status, answer = _post(handlers_app, query, b'{"ToUserName":"gh_1","Encrypt":"\\ud800"}')
    assert status == 400 and "surrogate" in answer
    _no_internal_error(caplog)


@pytest.mark.parametrize(
    ("msg_id", "shown"),
    [
        ("<MsgId>49d72d67b16d115e7935ac386f2f0fa3_1555684067</MsgId>", "string id"),
        ("<MsgID>7700112233</MsgID>", "MsgID spelling"),
        ("", "no id at all"),
        ("<MsgId>" + "9" * 4301 + "</MsgId>", "an id int() cannot take"),
    ],
)
def test_signed_text_whatever_its_id_is_answered_once(
    handlers_app: Flask, caplog: pytest.LogCaptureFixture, msg_id: str, shown: str
) -> None:
    # These were refused 400 "MsgId must be an integer", which WeChat retries and then shows
    # the user as an error.
    user = f"oId{len(msg_id)}x{len(shown)}"
    body = (
        f"<xml><ToUserName>gh_1</ToUserName><FromUserName>{user}</FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType>text</MsgType>"
        f"<Content>{shown}</Content>{msg_id}</xml>"
    ).encode()
    query, raw = _signed(body, "safe", "xml")
    with caplog.at_level(logging.INFO):
        first = _post(handlers_app, query, raw)
        retry = _post(handlers_app, query, raw)
    assert first[0] == retry[0] == 200
    assert first[1] == retry[1]  # the retry gets the very same bytes
    assert sum(n for key, n in service_handlers.calls.items() if f":{user}:" in key) == 1
    _no_internal_error(caplog)


def test_events_of_one_second_that_differ_are_all_handled(handlers_app: Flask) -> None:
    # Three wxa_media_check pushes from one system sender in one second, with other trace_ids,
    # reached the handler once: they were keyed by sender, time, event and EventKey only.
    now = int(time.time())
    for trace in ("t1", "t2", "t3"):
        event = {
            "ToUserName": "gh_1",
            "FromUserName": "oSystemSender",
            "CreateTime": now,
            "MsgType": "event",
            "Event": "wxa_media_check",
            "trace_id": trace,
            "status_code": 0,
        }
        query, raw = _signed(json.dumps(event).encode(), "safe", "json")
        for _ in range(2):  # each also retried: still one run per push
            assert _post(handlers_app, query, raw)[0] == 200
    runs = [n for key, n in service_handlers.calls.items() if ":oSystemSender:" in key]
    assert sorted(runs) == [1, 1, 1]
