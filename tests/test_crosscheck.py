"""Our protocol core against wechatpy (through tests/peer.py): both directions, many inputs."""

from __future__ import annotations

import dataclasses
import random
import string
from typing import Any

import pytest
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature

from app.wechat import codec
from app.wechat.codec import BodyFormat
from app.wechat.crypto import MessageCrypto
from app.wechat.envelope import Account, Mode, open_push, seal
from app.wechat.signature import sign, verify
from tests.peer import (
    PeerError,
    WeChatPeer,
    as_xml_fields,
    event_fields,
    json_body,
    load_example,
    text_fields,
    xml_body,
)

SAFE_XML = load_example("safe_push_xml")
TOKEN = SAFE_XML["token"]
APPID = SAFE_XML["appid"]
NOW = 1732406400

#: (EncodingAESKey, AppID) pairs: the worked example's non-canonical key, the official all-A
#: key, and a key whose last character is not canonical either.
ACCOUNTS = [
    (SAFE_XML["encoding_aes_key"], APPID),
    ("A" * 43, "wxba5fad812f8e6fb9"),
    ("Zx9" * 14 + "B", "wx2c2769f8efd9abc2"),
]

_rng = random.Random(20241124)
_ALPHABET = (
    string.ascii_letters
    + string.digits
    + " <>&'\"]]>\n\t"
    + "你好微信消息推送加密"
    + "éü€"
    + "🎉😀"
)


def _random_text(size: int) -> bytes:
    """Random UTF-8 text of exactly ``size`` bytes or one code point less."""
    chars: list[str] = []
    total = 0
    while total < size:
        char = _rng.choice(_ALPHABET)
        width = len(char.encode())
        if total + width > size:
            break
        chars.append(char)
        total += width
    return "".join(chars).encode()


#: Every length 0..63 of ASCII (frame = 16 + 4 + n + 18 bytes: every pad value 1..32, twice),
#: then random Unicode messages up to 2000 bytes.
MESSAGES: list[bytes] = [("m" * n).encode() for n in range(64)] + [
    _random_text(_rng.randint(0, 2000)) for _ in range(120)
]


def _pad_value(message: bytes, appid: str = APPID) -> int:
    return 32 - (16 + 4 + len(message) + len(appid)) % 32


def test_messages_cover_every_pad_value_and_size() -> None:
    assert {_pad_value(m) for m in MESSAGES} == set(range(1, 33))
    assert min(map(len, MESSAGES)) == 0
    assert max(map(len, MESSAGES)) > 1900
    assert any(len(m.decode()) < len(m) for m in MESSAGES)  # multi-byte characters present


def _ids(message: bytes) -> str:
    return f"len{len(message)}-pad{_pad_value(message)}"


# -- AES both ways -----------------------------------------------------------------------------


@pytest.mark.parametrize("message", MESSAGES, ids=_ids)
def test_ours_encrypt_wechatpy_decrypts(message: bytes) -> None:
    ours = MessageCrypto(SAFE_XML["encoding_aes_key"], APPID)
    peer = WeChatPeer(TOKEN, SAFE_XML["encoding_aes_key"], APPID)
    assert peer.decrypt(ours.encrypt(message)) == message


@pytest.mark.parametrize("message", MESSAGES, ids=_ids)
def test_wechatpy_encrypt_ours_decrypts(message: bytes) -> None:
    ours = MessageCrypto(SAFE_XML["encoding_aes_key"], APPID)
    peer = WeChatPeer(TOKEN, SAFE_XML["encoding_aes_key"], APPID)
    assert ours.decrypt(peer.encrypt(message)) == message


@pytest.mark.parametrize(("key", "appid"), ACCOUNTS)
def test_same_prefix_gives_the_same_ciphertext(key: str, appid: str) -> None:
    ours = MessageCrypto(key, appid)
    peer = WeChatPeer(TOKEN, key, appid)
    rng = random.Random(key)
    for message in MESSAGES[::7]:
        prefix = rng.randbytes(16)
        assert ours.encrypt(message, prefix=prefix) == peer.encrypt(message, prefix=prefix)


@pytest.mark.parametrize(("key", "appid"), ACCOUNTS)
def test_keys_decode_the_same(key: str, appid: str) -> None:
    ours = MessageCrypto(key, appid)
    peer = WeChatPeer(TOKEN, key, appid)
    for message in MESSAGES[::11]:
        assert ours.decrypt(peer.encrypt(message)) == message
        assert peer.decrypt(ours.encrypt(message)) == message


# -- signatures --------------------------------------------------------------------------------

_B64 = string.ascii_letters + string.digits + "+/="


def _signature_cases() -> list[tuple[str, str, str, str]]:
    rng = random.Random(7)
    cases = [("test", "1410685589", "test", ""), ("a", "a", "a", "a"), ("", "", "", "")]
    for _ in range(200):
        token = "".join(rng.choices(string.ascii_letters + string.digits, k=rng.randint(3, 32)))
        timestamp = str(rng.randint(0, 2**32))
        nonce = str(rng.randint(0, 10**10))
        encrypt = "".join(rng.choices(_B64, k=rng.randint(0, 400)))
        cases.append((token, timestamp, nonce, encrypt))
    return cases


SIGNATURE_CASES = _signature_cases()


def test_signatures_agree_with_wechatpy() -> None:
    for token, timestamp, nonce, encrypt in SIGNATURE_CASES:
        ours = sign(token, timestamp, nonce)
        assert ours == WeChatPeer.sign(token, timestamp, nonce)
        check_signature(token, ours, timestamp, nonce)  # raises when wechatpy disagrees
        verify(WeChatPeer.sign(token, timestamp, nonce), token, timestamp, nonce)
        ours_msg = sign(token, timestamp, nonce, encrypt)
        assert ours_msg == WeChatPeer.sign(token, timestamp, nonce, encrypt)
        verify(
            WeChatPeer.sign(token, timestamp, nonce, encrypt),
            token,
            timestamp,
            nonce,
            encrypt,
            what="msg_signature",
        )


def test_non_ascii_parts_sort_the_same() -> None:
    # Code-point order and UTF-8 byte order agree, so both sides sort alike.
    parts = ("微信", "token", "é", "123", "😀")
    assert sign(*parts) == WeChatPeer.sign(*parts)


def test_wechatpy_reply_envelope_opens_with_our_primitives() -> None:
    # wechatpy writes its envelope with newlines and its own XML template.
    key = SAFE_XML["encoding_aes_key"]
    envelope = WeChatCrypto(TOKEN, key, APPID).encrypt_message(
        "<xml><Content><![CDATA[你好]]></Content></xml>", "42", "1732406401"
    )
    fields = codec.parse_xml(envelope.encode())
    assert set(fields) == {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
    verify(fields["MsgSignature"], TOKEN, fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    message = MessageCrypto(key, APPID).decrypt(fields["Encrypt"])
    assert codec.parse_xml(message) == {"Content": "你好"}


# -- whole pushes, every mode and format -------------------------------------------------------


def _push_messages() -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(11)
    messages = [
        ("text", text_fields("hello")),
        ("text-cjk-cdata", text_fields("你好 ]]> <&> 🎉")),
        ("text-empty", text_fields("")),
        ("msgid-beyond-2^53", text_fields("x", msg_id=6054768590064713728)),
        ("subscribe", event_fields("subscribe", event_key="qrscene_42", Ticket="T")),
        (
            "scancode",
            event_fields(
                "scancode_push",
                event_key="k",
                ScanCodeInfo={"ScanType": "qrcode", "ScanResult": "r"},
            ),
        ),
        ("debug", event_fields("debug_demo", debug_str="hello world")),
    ]
    for size in (100, 1000, 2000):
        content = _random_text(size).decode()
        messages.append((f"random-{size}", text_fields(content, msg_id=rng.randint(1, 2**63))))
    return messages


PUSH_MESSAGES = _push_messages()
MODES = [Mode.PLAINTEXT, Mode.COMPATIBLE, Mode.SAFE]
FORMATS = [BodyFormat.XML, BodyFormat.JSON]


@pytest.mark.parametrize(("key", "appid"), ACCOUNTS[:2])
@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("body_format", FORMATS, ids=str)
@pytest.mark.parametrize(("name", "fields"), PUSH_MESSAGES, ids=[n for n, _ in PUSH_MESSAGES])
def test_peer_push_opens_and_reply_returns(
    key: str, appid: str, mode: Mode, body_format: BodyFormat, name: str, fields: dict[str, Any]
) -> None:
    peer = WeChatPeer(TOKEN, key, appid)
    account = Account(token=TOKEN, appid=appid, crypto=MessageCrypto(key, appid))
    xml = body_format is BodyFormat.XML
    message = xml_body(fields) if xml else json_body(fields)
    query, body = peer.push(
        message, mode=mode.value, body_format=body_format.value, timestamp=NOW, nonce="1320562132"
    )

    assert query["signature"] == sign(TOKEN, str(NOW), "1320562132")
    assert query["openid"] == fields["FromUserName"]
    if mode is not Mode.PLAINTEXT:
        encrypted = codec.parse(body, body_format)["Encrypt"]
        assert query["msg_signature"] == sign(TOKEN, str(NOW), "1320562132", encrypted)

    push = open_push(query, body, account, now=NOW, require_encryption=mode is not Mode.PLAINTEXT)
    assert push.mode is mode
    assert push.body_format is body_format
    assert push.fields == (as_xml_fields(fields) if xml else fields)

    reply = {
        "ToUserName": fields["FromUserName"],
        "FromUserName": fields["ToUserName"],
        "CreateTime": NOW + 1,
        "MsgType": "text",
        "Content": f"echo: {fields.get('Content', '')}",
    }
    sealed = seal(reply, push, account, now=NOW + 1, nonce="9876543210")
    opened = peer.open_reply(sealed, body_format=body_format.value)
    assert opened == codec.render(reply, body_format)
    if mode is Mode.PLAINTEXT:
        assert sealed == opened


# -- the peer itself: a faithful WeChat for the worked examples ---------------------------------


def test_peer_handshake_reproduces_the_vectors() -> None:
    ex = load_example("handshake")
    peer = WeChatPeer(ex["token"])
    query = peer.handshake_query("e", timestamp=int(ex["query"]["timestamp"]), nonce="1234567890")
    assert query == {**ex["query"], "echostr": "e"}
    mp = load_example("mp_handshake")
    q = mp["query"]
    assert (
        WeChatPeer(mp["token"]).handshake_query(
            q["echostr"], timestamp=q["timestamp"], nonce=q["nonce"]
        )
        == q
    )


@pytest.mark.parametrize(
    ("name", "body_format"), [("safe_push_xml", "xml"), ("safe_push_json", "json")]
)
def test_peer_push_reproduces_the_safe_push(name: str, body_format: str) -> None:
    ex = load_example(name)
    peer = WeChatPeer(ex["token"], ex["encoding_aes_key"], ex["appid"])
    query, body = peer.push(
        ex["message"],
        mode="safe",
        body_format=body_format,
        timestamp=int(ex["timestamp"]),
        nonce=ex["nonce"],
        prefix=ex["prefix"].encode(),
    )
    assert query == {
        "signature": SAFE_XML["signature"],
        "timestamp": ex["timestamp"],
        "nonce": ex["nonce"],
        "openid": ex["fields"]["FromUserName"],
        "encrypt_type": "aes",
        "msg_signature": ex["msg_signature"],
    }
    outer = {"ToUserName": "gh_0123456789ab", "Encrypt": ex["encrypt"]}
    assert body == (xml_body(outer) if body_format == "xml" else json_body(outer))


def test_peer_decrypts_the_official_samples() -> None:
    oa = load_example("oa_compatible_push_xml")
    peer = WeChatPeer(oa["token"], oa["encoding_aes_key"], oa["appid"])
    assert peer.decrypt(oa["encrypt"]) == oa["message"].encode()
    mp = load_example("mp_encrypted_reply_json")
    peer = WeChatPeer(mp["token"], mp["encoding_aes_key"], mp["appid"])
    assert peer.open_reply(mp["body"].encode(), body_format="json") == mp["reply"].encode()


def test_peer_compatible_body_keeps_the_plaintext_fields() -> None:
    peer = WeChatPeer(TOKEN, SAFE_XML["encoding_aes_key"], APPID)
    _, body = peer.push(SAFE_XML["message"], mode="compatible", timestamp=NOW, nonce="1")
    fields = codec.parse_xml(body)
    assert {k: v for k, v in fields.items() if k != "Encrypt"} == SAFE_XML["fields"]
    assert peer.decrypt(fields["Encrypt"]) == SAFE_XML["message"].encode()


@pytest.mark.parametrize("answer", [b"", b"success", b"<xml><a>1</a></xml>", b'{"a":1}'])
def test_peer_returns_plain_answers_unchanged(answer: bytes) -> None:
    peer = WeChatPeer(TOKEN, SAFE_XML["encoding_aes_key"], APPID)
    for body_format in ("xml", "json"):
        assert peer.open_reply(answer, body_format=body_format) == answer


def test_peer_refuses_replies_for_another_appid() -> None:
    key = SAFE_XML["encoding_aes_key"]
    account = Account(TOKEN, "wx0000000000000000", MessageCrypto(key, "wx0000000000000000"))
    push = open_push(
        *WeChatPeer(TOKEN).push(xml_body(text_fields("x")), timestamp=NOW, nonce="1"),
        account,
        now=NOW,
    )
    sealed = seal(
        {"a": "b"}, dataclasses.replace(push, mode=Mode.SAFE), account, now=NOW, nonce="1"
    )
    with pytest.raises(PeerError) as info:
        WeChatPeer(TOKEN, key, APPID).open_reply(sealed, body_format="xml")
    assert str(info.value) == f"reply frame does not carry AppID {APPID!r}"


def test_peer_refuses_a_json_envelope_with_a_text_timestamp() -> None:
    peer = WeChatPeer(TOKEN, SAFE_XML["encoding_aes_key"], APPID)
    encrypted = peer.encrypt(b"{}")
    envelope = {
        "Encrypt": encrypted,
        "MsgSignature": peer.sign(TOKEN, "1", "2", encrypted),
        "TimeStamp": "1",
        "Nonce": "2",
    }
    with pytest.raises(PeerError) as info:
        peer.open_reply(json_body(envelope), body_format="json")
    assert str(info.value) == "JSON TimeStamp is '1', expected a number"


def test_peer_without_key_refuses_encrypted_modes() -> None:
    with pytest.raises(ValueError) as info:
        WeChatPeer(TOKEN).push(b"<xml/>", mode="safe", timestamp=NOW, nonce="1")
    assert str(info.value) == "this peer has no EncodingAESKey: encrypted modes are unavailable"
    with pytest.raises(ValueError):
        WeChatPeer(TOKEN).push(b"<xml/>", mode="secure", timestamp=NOW, nonce="1")
