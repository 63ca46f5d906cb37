"""envelope.py: handshake, open_push in every mode and format, seal; one broken thing per test."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.wechat import codec
from app.wechat.codec import BodyFormat
from app.wechat.crypto import MessageCrypto
from app.wechat.envelope import Account, Mode, Push, open_push, seal, verify_handshake
from app.wechat.errors import (
    AppIdMismatch,
    BadPayload,
    DecryptError,
    EncryptionRequired,
    MalformedBody,
    MissingParameter,
    SignatureError,
    StaleTimestamp,
)
from tests.peer import PeerError, WeChatPeer, load_example, text_json, text_xml

HANDSHAKE = load_example("handshake")
MP_HANDSHAKE = load_example("mp_handshake")
SAFE_XML = load_example("safe_push_xml")
SAFE_JSON = load_example("safe_push_json")
REPLY_XML = load_example("encrypted_reply_xml")
MP_PUSH = load_example("mp_safe_push_json")
MP_REPLY = load_example("mp_encrypted_reply_json")
OA_COMPAT = load_example("oa_compatible_push_xml")

TOKEN = SAFE_XML["token"]
KEY = SAFE_XML["encoding_aes_key"]
APPID = SAFE_XML["appid"]
NOW = 1732406400
NONCE = "1320562132"
SIG_MISMATCH = "signature does not match; check that WX_TOKEN equals the console's Token"
MSG_SIG_MISMATCH = "msg_signature does not match; check that WX_TOKEN equals the console's Token"


def account_for(example: dict[str, Any]) -> Account:
    crypto = MessageCrypto(example["encoding_aes_key"], example["appid"])
    return Account(token=example["token"], appid=example["appid"], crypto=crypto)


@pytest.fixture
def account() -> Account:
    return account_for(SAFE_XML)


@pytest.fixture
def peer() -> WeChatPeer:
    return WeChatPeer(TOKEN, KEY, APPID)


def safe_xml_push() -> tuple[dict[str, str], bytes]:
    """The §8 safe-mode push as it arrives: query and body."""
    ex = SAFE_XML
    query = {
        "signature": ex["signature"],
        "timestamp": ex["timestamp"],
        "nonce": ex["nonce"],
        "openid": ex["fields"]["FromUserName"],
        "encrypt_type": "aes",
        "msg_signature": ex["msg_signature"],
    }
    body = codec.render_xml({"ToUserName": "gh_0123456789ab", "Encrypt": ex["encrypt"]})
    return query, body


# -- handshake ---------------------------------------------------------------------------------


def test_handshake_vector() -> None:
    query = {**HANDSHAKE["query"], "echostr": "5837397520"}
    assert verify_handshake(query, HANDSHAKE["token"], now=NOW) == "5837397520"


def test_official_mp_handshake_with_window_off() -> None:
    ex = MP_HANDSHAKE
    assert verify_handshake(ex["query"], ex["token"], now=NOW, tolerance=0) == ex["answer"]


def test_official_mp_handshake_at_its_own_time() -> None:
    ex = MP_HANDSHAKE
    now = int(ex["query"]["timestamp"]) + 299
    assert verify_handshake(ex["query"], ex["token"], now=now) == ex["answer"]


def test_handshake_echostr_is_returned_exactly(peer: WeChatPeer) -> None:
    echostr = "4375120948345356249 <&>"
    query = peer.handshake_query(echostr, timestamp=NOW, nonce="42")
    assert verify_handshake(query, TOKEN, now=NOW) == echostr


@pytest.mark.parametrize("name", ["signature", "timestamp", "nonce", "echostr"])
def test_handshake_missing_parameter(name: str) -> None:
    query = {**HANDSHAKE["query"], "echostr": "1"}
    del query[name]
    with pytest.raises(MissingParameter) as info:
        verify_handshake(query, HANDSHAKE["token"], now=NOW)
    assert (info.value.status, info.value.message) == (400, f"query is missing {name}")


def test_handshake_empty_parameter_counts_as_missing() -> None:
    query = {**HANDSHAKE["query"], "echostr": "1", "nonce": ""}
    with pytest.raises(MissingParameter) as info:
        verify_handshake(query, HANDSHAKE["token"], now=NOW)
    assert info.value.message == "query is missing nonce"


def test_handshake_names_every_missing_parameter() -> None:
    with pytest.raises(MissingParameter) as info:
        verify_handshake({"echostr": "1"}, TOKEN, now=NOW)
    assert info.value.message == "query is missing signature, timestamp, nonce"


def test_handshake_wrong_token() -> None:
    query = {**HANDSHAKE["query"], "echostr": "1"}
    with pytest.raises(SignatureError) as info:
        verify_handshake(query, "anothertoken", now=NOW)
    assert (info.value.status, info.value.errcode) == (403, -40001)
    assert info.value.message == SIG_MISMATCH


def test_handshake_stale() -> None:
    query = {**HANDSHAKE["query"], "echostr": "1"}
    with pytest.raises(StaleTimestamp) as info:
        verify_handshake(query, HANDSHAKE["token"], now=NOW + 301)
    assert info.value.message.startswith("timestamp 1732406400 is 301 s old; limit 300 s")


def test_handshake_signature_is_checked_before_the_timestamp() -> None:
    query = {**HANDSHAKE["query"], "echostr": "1", "signature": "0" * 40}
    with pytest.raises(SignatureError):
        verify_handshake(query, HANDSHAKE["token"], now=NOW + 10**6)


def test_handshake_signed_non_numeric_timestamp(peer: WeChatPeer) -> None:
    query = peer.handshake_query("1", timestamp="soon", nonce="42")
    with pytest.raises(StaleTimestamp) as info:
        verify_handshake(query, TOKEN, now=NOW)
    assert info.value.message == "timestamp is not a Unix time (4 characters)"


# -- open_push: the worked examples ------------------------------------------------------------


def test_safe_xml_worked_example(account: Account) -> None:
    query, body = safe_xml_push()
    push = open_push(query, body, account, now=NOW)
    assert push == Push(SAFE_XML["fields"], Mode.SAFE, BodyFormat.XML, NOW, NONCE)


def test_safe_json_worked_example(account: Account) -> None:
    ex = SAFE_JSON
    query = {
        "signature": SAFE_XML["signature"],
        "timestamp": ex["timestamp"],
        "nonce": ex["nonce"],
        "encrypt_type": "aes",
        "msg_signature": ex["msg_signature"],
    }
    body = json.dumps({"ToUserName": "gh_0123456789ab", "Encrypt": ex["encrypt"]}).encode()
    push = open_push(query, body, account, now=NOW)
    assert push == Push(ex["fields"], Mode.SAFE, BodyFormat.JSON, NOW, NONCE)
    assert type(push.fields["MsgId"]) is int


@pytest.mark.parametrize("tolerance", [0, 300])
def test_official_mp_safe_json_push(tolerance: int) -> None:
    ex = MP_PUSH
    now = int(ex["query"]["timestamp"]) if tolerance else NOW
    push = open_push(
        ex["query"], ex["body"].encode(), account_for(ex), now=now, tolerance=tolerance
    )
    assert push.fields == ex["fields"]
    assert (push.mode, push.body_format, push.nonce) == (Mode.SAFE, BodyFormat.JSON, "415670741")
    assert push.timestamp == 1714112445


def test_official_mp_push_is_stale_today() -> None:
    ex = MP_PUSH
    with pytest.raises(StaleTimestamp):
        open_push(ex["query"], ex["body"].encode(), account_for(ex), now=NOW)


def test_official_oa_compatible_push() -> None:
    ex = OA_COMPAT
    push = open_push(ex["query"], ex["body"].encode(), account_for(ex), now=NOW, tolerance=0)
    assert push == Push(ex["fields"], Mode.COMPATIBLE, BodyFormat.XML, 1409735669, "1320562132")


def test_compatible_mode_uses_only_the_decrypted_fields() -> None:
    ex = OA_COMPAT
    tampered = (
        ex["body"]
        .replace("<![CDATA[abcdteT]]>", "<![CDATA[transfer all money]]>")
        .replace("6054768590064713728", "1")
        .replace("<Encrypt>", "<Injected><![CDATA[yes]]></Injected><Encrypt>")
    )
    assert tampered != ex["body"]
    push = open_push(ex["query"], tampered.encode(), account_for(ex), now=NOW, tolerance=0)
    assert push.mode is Mode.COMPATIBLE
    assert push.fields == ex["fields"]
    assert push.fields["Content"] == "abcdteT"
    assert "Injected" not in push.fields


def test_compatible_json_uses_only_the_decrypted_fields(peer: WeChatPeer, account: Account) -> None:
    query, body = peer.push(
        text_json("real"), mode="compatible", body_format="json", timestamp=NOW, nonce=NONCE
    )
    outer = json.loads(body)
    outer["Content"] = "forged"
    outer["MsgType"] = "event"
    push = open_push(query, json.dumps(outer).encode(), account, now=NOW)
    assert push.mode is Mode.COMPATIBLE
    assert (push.fields["Content"], push.fields["MsgType"]) == ("real", "text")


# -- open_push: mode detection -----------------------------------------------------------------


@pytest.mark.parametrize("mode", [Mode.PLAINTEXT, Mode.COMPATIBLE, Mode.SAFE], ids=str)
@pytest.mark.parametrize("body_format", [BodyFormat.XML, BodyFormat.JSON], ids=str)
def test_mode_and_format_detection(
    peer: WeChatPeer, account: Account, mode: Mode, body_format: BodyFormat
) -> None:
    message = text_xml("你好") if body_format is BodyFormat.XML else text_json("你好")
    query, body = peer.push(message, mode=mode, body_format=body_format, timestamp=NOW, nonce=NONCE)
    push = open_push(query, body, account, now=NOW)
    assert (push.mode, push.body_format, push.timestamp, push.nonce) == (
        mode,
        body_format,
        NOW,
        NONCE,
    )
    assert push.fields["Content"] == "你好"
    assert push.fields == codec.parse(message, body_format)


def test_plaintext_push_is_the_body(peer: WeChatPeer) -> None:
    query, body = peer.push(text_xml("hi"), timestamp=NOW, nonce=NONCE)
    push = open_push(query, body, Account(token=TOKEN), now=NOW)
    assert push.fields["Content"] == "hi"
    assert push.mode is Mode.PLAINTEXT


def test_encrypt_field_without_encrypt_type_is_plaintext(account: Account) -> None:
    # A safe-mode body whose query lost encrypt_type is read as a plaintext push (and refused
    # when encryption is required, see below): nothing is decrypted.
    query, body = safe_xml_push()
    plain_query = {k: query[k] for k in ("signature", "timestamp", "nonce")}
    push = open_push(plain_query, body, account, now=NOW)
    assert push.mode is Mode.PLAINTEXT
    assert set(push.fields) == {"ToUserName", "Encrypt"}


@pytest.mark.parametrize("mode", ["plaintext", "safe"])
def test_push_whose_text_mentions_doctype(peer: WeChatPeer, account: Account, mode: str) -> None:
    query, body = peer.push(text_xml("<!DOCTYPE html>"), mode=mode, timestamp=NOW, nonce=NONCE)
    assert open_push(query, body, account, now=NOW).fields["Content"] == "<!DOCTYPE html>"


# -- open_push: require_encryption -------------------------------------------------------------


def test_require_encryption_refuses_plaintext(peer: WeChatPeer, account: Account) -> None:
    query, body = peer.push(text_xml("hi"), timestamp=NOW, nonce=NONCE)
    with pytest.raises(EncryptionRequired) as info:
        open_push(query, body, account, now=NOW, require_encryption=True)
    err = info.value
    assert (err.status, err.errcode) == (403, 0)
    assert err.message == (
        "plaintext push refused: WX_REQUIRE_ENCRYPTION is on; choose safe mode (安全模式)"
        " in the console"
    )


def test_require_encryption_refuses_stripped_encrypt_type(account: Account) -> None:
    query, body = safe_xml_push()
    del query["encrypt_type"]
    with pytest.raises(EncryptionRequired):
        open_push(query, body, account, now=NOW, require_encryption=True)


@pytest.mark.parametrize("mode", ["compatible", "safe"])
def test_require_encryption_accepts_encrypted(
    peer: WeChatPeer, account: Account, mode: str
) -> None:
    query, body = peer.push(text_xml("hi"), mode=mode, timestamp=NOW, nonce=NONCE)
    push = open_push(query, body, account, now=NOW, require_encryption=True)
    assert push.fields["Content"] == "hi"


# -- open_push: one broken thing each ----------------------------------------------------------


@pytest.mark.parametrize("name", ["signature", "timestamp", "nonce", "msg_signature"])
def test_missing_parameter(account: Account, name: str) -> None:
    query, body = safe_xml_push()
    del query[name]
    with pytest.raises(MissingParameter) as info:
        open_push(query, body, account, now=NOW)
    assert (info.value.status, info.value.message) == (400, f"query is missing {name}")


def test_openid_is_not_required(account: Account) -> None:
    query, body = safe_xml_push()
    del query["openid"]
    assert open_push(query, body, account, now=NOW).fields == SAFE_XML["fields"]


def test_wrong_signature(account: Account) -> None:
    query, body = safe_xml_push()
    query["signature"] = SAFE_XML["msg_signature"]
    with pytest.raises(SignatureError) as info:
        open_push(query, body, account, now=NOW)
    assert (info.value.status, info.value.errcode, info.value.message) == (
        403,
        -40001,
        SIG_MISMATCH,
    )


def test_wrong_msg_signature(account: Account) -> None:
    query, body = safe_xml_push()
    query["msg_signature"] = SAFE_XML["signature"]
    with pytest.raises(SignatureError) as info:
        open_push(query, body, account, now=NOW)
    assert info.value.message == MSG_SIG_MISMATCH


def test_tampered_encrypt_fails_msg_signature_before_decrypting(account: Account) -> None:
    query, _ = safe_xml_push()
    forged = "A" + SAFE_XML["encrypt"][1:]
    body = codec.render_xml({"ToUserName": "gh_0123456789ab", "Encrypt": forged})
    with pytest.raises(SignatureError) as info:
        open_push(query, body, account, now=NOW)
    assert info.value.message == MSG_SIG_MISMATCH


def test_wrong_token(account: Account) -> None:
    query, body = safe_xml_push()
    other = Account(token="othertoken", appid=APPID, crypto=account.crypto)
    with pytest.raises(SignatureError) as info:
        open_push(query, body, other, now=NOW)
    assert info.value.message == SIG_MISMATCH


@pytest.mark.parametrize(
    ("now", "age"), [(NOW + 301, "301 s old"), (NOW - 301, "301 s ahead of server time")]
)
def test_stale_push(account: Account, now: int, age: str) -> None:
    query, body = safe_xml_push()
    with pytest.raises(StaleTimestamp) as info:
        open_push(query, body, account, now=now)
    assert info.value.status == 403
    assert info.value.message.startswith(f"timestamp {NOW} is {age}; limit 300 s")


def test_window_off_accepts_an_old_push(account: Account) -> None:
    query, body = safe_xml_push()
    assert open_push(query, body, account, now=NOW + 10**8, tolerance=0).timestamp == NOW


def test_signed_non_numeric_timestamp(peer: WeChatPeer, account: Account) -> None:
    query, body = peer.push(text_xml("hi"), timestamp="tomorrow", nonce=NONCE)
    with pytest.raises(StaleTimestamp) as info:
        open_push(query, body, account, now=NOW, tolerance=0)
    assert info.value.message == "timestamp is not a Unix time (8 characters)"


def test_encrypt_type_without_encrypt_field(peer: WeChatPeer, account: Account) -> None:
    query, _ = peer.push(text_xml("hi"), mode="safe", timestamp=NOW, nonce=NONCE)
    with pytest.raises(MalformedBody) as info:
        open_push(query, text_xml("hi"), account, now=NOW)
    assert (info.value.errcode, info.value.message) == (
        -40002,
        "encrypt_type=aes but the body has no Encrypt field",
    )


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><Encrypt></Encrypt></xml>",
        b"<xml><Encrypt><a>1</a></Encrypt></xml>",
        b"<xml><Encrypt>a</Encrypt><Encrypt>b</Encrypt></xml>",
        b'{"Encrypt":12345}',
        b'{"Encrypt":null}',
    ],
    ids=["empty", "nested", "repeated", "json-number", "json-null"],
)
def test_encrypt_field_that_is_not_text(account: Account, body: bytes) -> None:
    query, _ = safe_xml_push()
    with pytest.raises(MalformedBody) as info:
        open_push(query, body, account, now=NOW)
    assert info.value.message == "encrypt_type=aes but the body has no Encrypt field"


def test_encrypted_push_without_crypto_configured() -> None:
    query, body = safe_xml_push()
    with pytest.raises(BadPayload) as info:
        open_push(query, body, Account(token=TOKEN, appid=APPID), now=NOW)
    err = info.value
    assert type(err) is BadPayload
    assert err.status == 400
    assert err.message == (
        "push is encrypted but WX_AES_KEY is not set; copy the console's EncodingAESKey"
    )


def test_encrypted_push_for_another_appid() -> None:
    query, body = safe_xml_push()
    other = Account(
        token=TOKEN, appid="wx0000000000000000", crypto=MessageCrypto(KEY, "wx0000000000000000")
    )
    with pytest.raises(AppIdMismatch) as info:
        open_push(query, body, other, now=NOW)
    assert info.value.message == (
        f"AppID in payload is {APPID!r} but WX_APPID is 'wx0000000000000000'"
    )


def test_encrypted_push_under_another_key() -> None:
    query, body = safe_xml_push()
    other = Account(token=TOKEN, appid=APPID, crypto=MessageCrypto("B" * 43, APPID))
    with pytest.raises(DecryptError) as info:
        open_push(query, body, other, now=NOW)
    assert info.value.errcode == -40007


@pytest.mark.parametrize(
    "body",
    [b"", b"success", b"[]", b"<xml>", b"{"],
    ids=["empty", "text", "array", "truncated-xml", "truncated-json"],
)
def test_body_that_is_not_a_message(peer: WeChatPeer, body: bytes) -> None:
    query, _ = peer.push(text_xml("hi"), timestamp=NOW, nonce=NONCE)
    with pytest.raises(MalformedBody):
        open_push(query, body, Account(token=TOKEN), now=NOW)


def test_decrypted_payload_that_is_not_a_message(peer: WeChatPeer, account: Account) -> None:
    query, body = peer.push(b"not a message", mode="safe", timestamp=NOW, nonce=NONCE)
    with pytest.raises(MalformedBody):
        open_push(query, body, account, now=NOW)


# -- seal --------------------------------------------------------------------------------------


def push_of(mode: Mode, body_format: BodyFormat) -> Push:
    return Push({}, mode, body_format, NOW, NONCE)


def test_seal_plaintext_xml_is_the_rendered_reply(account: Account) -> None:
    reply = seal(
        REPLY_XML["reply_fields"],
        push_of(Mode.PLAINTEXT, BodyFormat.XML),
        account,
        now=1732406401,
        nonce="9876543210",
    )
    assert reply == REPLY_XML["reply"].encode()


def test_seal_plaintext_json(account: Account) -> None:
    reply = seal(
        MP_REPLY["reply_fields"],
        push_of(Mode.PLAINTEXT, BodyFormat.JSON),
        account,
        now=1,
        nonce="2",
    )
    assert reply == MP_REPLY["reply"].encode()


def test_seal_plaintext_needs_no_crypto() -> None:
    reply = seal(
        {"a": "b"}, push_of(Mode.PLAINTEXT, BodyFormat.XML), Account(token=TOKEN), now=1, nonce="2"
    )
    assert reply == b"<xml><a><![CDATA[b]]></a></xml>"


def test_seal_reproduces_the_encrypted_xml_reply(account: Account, peer: WeChatPeer) -> None:
    ex = REPLY_XML
    query, body = safe_xml_push()
    push = open_push(query, body, account, now=NOW)
    sealed = seal(
        ex["reply_fields"],
        push,
        account,
        now=int(ex["timestamp"]),
        nonce=ex["nonce"],
        prefix=ex["prefix"].encode(),
    )
    assert (
        sealed
        == (
            f"<xml><Encrypt><![CDATA[{ex['encrypt']}]]></Encrypt>"
            f"<MsgSignature><![CDATA[{ex['msg_signature']}]]></MsgSignature>"
            f"<TimeStamp>{ex['timestamp']}</TimeStamp><Nonce><![CDATA[{ex['nonce']}]]></Nonce></xml>"
        ).encode()
    )
    assert peer.open_reply(sealed, body_format="xml") == ex["reply"].encode()


def test_seal_reproduces_the_official_mp_json_reply() -> None:
    ex = MP_REPLY
    push_ex = MP_PUSH
    account = account_for(ex)
    push = open_push(push_ex["query"], push_ex["body"].encode(), account, now=NOW, tolerance=0)
    sealed = seal(
        ex["reply_fields"],
        push,
        account,
        now=int(ex["timestamp"]),
        nonce=ex["nonce"],
        prefix=ex["prefix"].encode(),
    )
    assert sealed == ex["body"].encode()
    envelope = json.loads(sealed)
    assert type(envelope["TimeStamp"]) is int and type(envelope["Nonce"]) is str
    peer = WeChatPeer(ex["token"], ex["encoding_aes_key"], ex["appid"])
    assert peer.open_reply(sealed, body_format="json") == ex["reply"].encode()


@pytest.mark.parametrize("mode", [Mode.COMPATIBLE, Mode.SAFE], ids=str)
@pytest.mark.parametrize("body_format", [BodyFormat.XML, BodyFormat.JSON], ids=str)
def test_seal_encrypted_with_random_prefix_opens_at_the_peer(
    account: Account, peer: WeChatPeer, mode: Mode, body_format: BodyFormat
) -> None:
    fields = {"ToUserName": "o1", "Content": "回复 ]]> <&>", "CreateTime": 1}
    sealed = seal(fields, push_of(mode, body_format), account, now=NOW + 1, nonce="777")
    assert codec.parse(sealed, body_format)["Nonce"] == "777"
    assert peer.open_reply(sealed, body_format=body_format) == codec.render(fields, body_format)


def test_sealed_reply_is_bound_to_its_signature(account: Account, peer: WeChatPeer) -> None:
    sealed = seal({"a": "b"}, push_of(Mode.SAFE, BodyFormat.JSON), account, now=NOW, nonce="1")
    envelope = json.loads(sealed)
    envelope["Nonce"] = "2"
    with pytest.raises(PeerError):
        peer.open_reply(json.dumps(envelope).encode(), body_format="json")


def test_seal_encrypted_without_crypto() -> None:
    with pytest.raises(ValueError) as info:
        seal({"a": "b"}, push_of(Mode.SAFE, BodyFormat.XML), Account(token=TOKEN), now=1, nonce="2")
    assert str(info.value) == "cannot seal an encrypted reply without an EncodingAESKey"
