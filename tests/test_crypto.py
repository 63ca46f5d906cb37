"""crypto.py: EncodingAESKey, PKCS#7 to 32 bytes and the AES-CBC frame, byte for byte."""

from __future__ import annotations

import base64
import binascii
import struct
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from Crypto.Cipher import AES

from app.wechat import crypto as crypto_module
from app.wechat.crypto import PAD_BLOCK, MessageCrypto, decode_aes_key, pad, unpad
from app.wechat.errors import AppIdMismatch, BadBase64, BadFrame, DecryptError, WeChatError
from tests.peer import load_example

SAFE_XML = load_example("safe_push_xml")
REPLY_XML = load_example("encrypted_reply_xml")
SAFE_JSON = load_example("safe_push_json")
MP_PUSH = load_example("mp_safe_push_json")
MP_REPLY = load_example("mp_encrypted_reply_json")
OA_COMPAT = load_example("oa_compatible_push_xml")

KEY = SAFE_XML["encoding_aes_key"]
APPID = SAFE_XML["appid"]
OTHER_APPID = "wx0000000000000000"
PAD_MESSAGE = "padding is invalid after decryption: wrong EncodingAESKey or tampered"


@pytest.fixture
def crypto() -> MessageCrypto:
    return MessageCrypto(KEY, APPID)


def aes_encrypt_frame(frame: bytes, key: str = KEY) -> str:
    """Encrypt a hand-made frame with our own pad and raw AES, bypassing MessageCrypto."""
    raw = decode_aes_key(key)
    cipher = AES.new(raw, AES.MODE_CBC, iv=raw[:16])
    return base64.b64encode(cipher.encrypt(pad(frame))).decode("ascii")


def aes_decrypt_raw(encrypted: str, key: str = KEY) -> bytes:
    raw = decode_aes_key(key)
    return AES.new(raw, AES.MODE_CBC, iv=raw[:16]).decrypt(base64.b64decode(encrypted))


def frame(message: bytes, appid: bytes = APPID.encode(), *, length: int | None = None) -> bytes:
    size = len(message) if length is None else length
    return b"0123456789abcdef" + struct.pack(">I", size) + message + appid


def assert_no_secrets(err: WeChatError, *secrets: str) -> None:
    text = str(err)
    for secret in (KEY, decode_aes_key(KEY).hex(), *secrets):
        assert secret not in text


# -- EncodingAESKey ----------------------------------------------------------------------------


def test_worked_example_key() -> None:
    key = decode_aes_key(KEY)
    assert key.hex() == SAFE_XML["key_hex"]
    assert len(key) == 32


def test_official_all_a_key_is_32_zero_bytes() -> None:
    assert decode_aes_key(MP_PUSH["encoding_aes_key"]) == bytes(32)


def test_non_canonical_key_is_accepted() -> None:
    # The last character carries 2 unused bits: ...ABCDEFG re-encodes as ...ABCDEFE.
    key = decode_aes_key(KEY)
    assert base64.b64encode(key).decode() == KEY[:-1] + "E="
    for last in "EFGH":
        assert decode_aes_key(KEY[:-1] + last) == key
    # A decode/re-encode round trip, what a strict validator does, would refuse this key.
    assert base64.b64encode(base64.b64decode(KEY + "=")).decode() != KEY + "="


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (KEY[:-1], "must be 43 characters (got 42)"),
        (KEY + "A", "must be 43 characters (got 44)"),
        ("", "must be 43 characters (got 0)"),
        (KEY + "=", "must be 43 characters (got 44)"),
        (KEY[:-1] + "+", "may contain only letters A-Z, a-z and digits 0-9"),
        (KEY[:-1] + "/", "may contain only letters A-Z, a-z and digits 0-9"),
        (KEY[:-1] + "=", "may contain only letters A-Z, a-z and digits 0-9"),
        (KEY[:-1] + " ", "may contain only letters A-Z, a-z and digits 0-9"),
        (KEY[:-1] + "密", "may contain only letters A-Z, a-z and digits 0-9"),
        (KEY[:-1] + "\n", "may contain only letters A-Z, a-z and digits 0-9"),
    ],
    ids=["42", "44", "empty", "padded", "plus", "slash", "equals", "space", "cjk", "newline"],
)
def test_invalid_key_is_a_value_error_without_the_key(key: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        decode_aes_key(key)
    assert str(info.value) == message
    with pytest.raises(ValueError) as at_start:
        MessageCrypto(key, APPID)
    assert str(at_start.value) == message
    assert KEY[:20] not in message


# -- PKCS#7 to 32 ------------------------------------------------------------------------------


def test_pad_block_is_32() -> None:
    assert PAD_BLOCK == 32


@pytest.mark.parametrize(
    ("length", "count"), [(0, 32), (1, 31), (15, 17), (16, 16), (31, 1), (32, 32), (33, 31)]
)
def test_pad_edges(length: int, count: int) -> None:
    data = b"x" * length
    assert pad(data) == data + bytes([count]) * count


@pytest.mark.parametrize("length", range(0, 97))
def test_pad_unpad_round_trip(length: int) -> None:
    data = bytes(range(length))
    padded = pad(data)
    assert len(padded) % 32 == 0
    assert 1 <= len(padded) - length <= 32
    assert unpad(padded) == data


def test_unpad_full_block_of_32() -> None:
    assert unpad(b"\x20" * 32) == b""
    assert unpad(b"abc" + b"\x20" * 32) == b"abc"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"x" * 31 + b"\x00",
        b"x" * 31 + b"\x21",
        b"x" * 63 + b"\xff",
        b"\x05" * 4,
        b"x" * 29 + b"\x02\x03\x03",
        b"x" * 28 + b"\x04\x04\x05\x04",
        b"x" * 16 + b"\x10" * 15 + b"\x11",
    ],
    ids=[
        "empty",
        "pad-0",
        "pad-33",
        "pad-255",
        "pad-over-length",
        "inconsistent-1",
        "inconsistent-2",
        "inconsistent-3",
    ],
)
def test_unpad_refuses_bad_padding(data: bytes) -> None:
    with pytest.raises(DecryptError) as info:
        unpad(data)
    err = info.value
    assert (err.status, err.errcode, err.message) == (400, -40007, PAD_MESSAGE)


# -- worked examples, byte for byte ------------------------------------------------------------


@pytest.mark.parametrize(
    "example",
    [SAFE_XML, SAFE_JSON, REPLY_XML, MP_REPLY],
    ids=["safe-xml-push", "safe-json-push", "xml-reply", "mp-json-reply"],
)
def test_encrypt_reproduces_worked_example(example: dict[str, str]) -> None:
    crypto = MessageCrypto(example["encoding_aes_key"], example["appid"])
    message = (example.get("message") or example["reply"]).encode()
    encrypted = crypto.encrypt(message, prefix=example["prefix"].encode())
    assert encrypted == example["encrypt"]
    assert crypto.decrypt(encrypted) == message


def test_every_message_of_one_crypto_encrypts_as_a_fresh_cipher_would(
    crypto: MessageCrypto,
) -> None:
    prefix = SAFE_XML["prefix"].encode()
    for length in (0, 1, 12, 13, 44, 300, 12, 0):
        message = bytes(range(length % 256)) * (1 + length // 256)
        expected = aes_encrypt_frame(frame(message))
        assert crypto.encrypt(message, prefix=prefix) == expected
        assert crypto.decrypt(expected) == message


def test_threads_encrypting_at_once_each_get_the_right_ciphertext(crypto: MessageCrypto) -> None:
    prefix = SAFE_XML["prefix"].encode()
    messages = [f"message {n} ".encode() * n for n in range(40)]
    expected = [aes_encrypt_frame(frame(message)) for message in messages]
    barrier = threading.Barrier(4)

    def encrypt_all(_: int) -> list[str]:
        barrier.wait()
        return [crypto.encrypt(message, prefix=prefix) for message in messages]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(encrypt_all, range(4)))
    assert results == [expected] * 4
    assert [crypto.decrypt(encrypted) for encrypted in expected] == messages
    assert 1 <= len(crypto._idle_chains) <= 4


def test_one_caller_reuses_one_encryptor(crypto: MessageCrypto) -> None:
    for n in range(50):
        crypto.encrypt(b"x" * n)
    assert len(crypto._idle_chains) == 1


def test_safe_push_frame_layout() -> None:
    ex = SAFE_XML
    message = ex["message"].encode()
    assert len(message) == ex["message_length"] == 271
    plain = aes_decrypt_raw(ex["encrypt"])
    expected = b"0123456789abcdef" + (271).to_bytes(4, "big") + message + APPID.encode()
    assert len(expected) == ex["frame_length"] == 309
    assert plain == expected + b"\x0b" * ex["pad"]
    assert len(plain) == 320


def test_mp_push_decrypts_with_19_bytes_of_padding() -> None:
    encrypted = MP_PUSH["body"].split('"Encrypt":"')[1].rstrip('"}')
    crypto = MessageCrypto(MP_PUSH["encoding_aes_key"], MP_PUSH["appid"])
    assert crypto.decrypt(encrypted) == MP_PUSH["message"].encode()
    plain = aes_decrypt_raw(encrypted, MP_PUSH["encoding_aes_key"])
    assert plain[-MP_PUSH["pad"] :] == bytes([19]) * 19
    assert plain[-20] != 19


def test_oa_sample_decrypts_to_280_bytes() -> None:
    crypto = MessageCrypto(OA_COMPAT["encoding_aes_key"], OA_COMPAT["appid"])
    message = crypto.decrypt(OA_COMPAT["encrypt"])
    assert len(message) == OA_COMPAT["message_length"] == 280
    assert message == OA_COMPAT["message"].encode()


def test_random_prefix_comes_from_secrets(
    crypto: MessageCrypto, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[int] = []

    def token_bytes(n: int) -> bytes:
        asked.append(n)
        return SAFE_XML["prefix"].encode()

    monkeypatch.setattr(crypto_module.secrets, "token_bytes", token_bytes)
    assert crypto.encrypt(SAFE_XML["message"].encode()) == SAFE_XML["encrypt"]
    assert asked == [16]


def test_random_prefix_differs_each_time(crypto: MessageCrypto) -> None:
    first, second = crypto.encrypt(b"same"), crypto.encrypt(b"same")
    assert first != second
    assert crypto.decrypt(first) == crypto.decrypt(second) == b"same"


@pytest.mark.parametrize("prefix", [b"", b"x" * 15, b"x" * 17])
def test_prefix_must_be_16_bytes(crypto: MessageCrypto, prefix: bytes) -> None:
    with pytest.raises(ValueError) as info:
        crypto.encrypt(b"m", prefix=prefix)
    assert str(info.value) == f"prefix must be 16 bytes (got {len(prefix)})"


@pytest.mark.parametrize("length", [0, 1, 13, 14, 15, 45, 46, 2000])
def test_round_trip_lengths(crypto: MessageCrypto, length: int) -> None:
    message = ("密" * length).encode()[:length]
    assert crypto.decrypt(crypto.encrypt(message)) == message


# -- BadBase64 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encrypted",
    ["not base64!", "QU=JD", "Q3st YC6h", "密文", "QUJDRA", "QUJD\n", "=QUJD"],
    ids=[
        "punctuation",
        "inner-padding",
        "space",
        "non-ascii",
        "missing-padding",
        "newline",
        "leading-padding",
    ],
)
def test_not_base64(crypto: MessageCrypto, encrypted: str) -> None:
    with pytest.raises(BadBase64) as info:
        crypto.decrypt(encrypted)
    err = info.value
    assert (err.status, err.errcode, err.message) == (400, -40010, "Encrypt is not valid base64")
    assert isinstance(err.__cause__, (binascii.Error, ValueError))


@pytest.mark.parametrize("size", [0, 1, 15, 17, 31, 33])
def test_base64_of_wrong_length(crypto: MessageCrypto, size: int) -> None:
    with pytest.raises(BadBase64) as info:
        crypto.decrypt(base64.b64encode(b"\x00" * size).decode())
    assert info.value.errcode == -40010
    assert info.value.message == (f"Encrypt decodes to {size} bytes, not a positive multiple of 16")


def test_empty_encrypt(crypto: MessageCrypto) -> None:
    with pytest.raises(BadBase64) as info:
        crypto.decrypt("")
    assert info.value.message == "Encrypt decodes to 0 bytes, not a positive multiple of 16"


# -- DecryptError ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other_key", ["A" * 43, "B" * 43, "zyxwvutsrqponmlkjihgfedcba9876543210ZYXWVUT"]
)
def test_other_key_is_a_decrypt_error(other_key: str) -> None:
    with pytest.raises(DecryptError) as info:
        MessageCrypto(other_key, APPID).decrypt(SAFE_XML["encrypt"])
    err = info.value
    assert (err.status, err.errcode, err.message) == (400, -40007, PAD_MESSAGE)
    assert_no_secrets(err, other_key, SAFE_XML["encrypt"][:24], "你好")


def test_tampered_ciphertext_is_a_decrypt_error(crypto: MessageCrypto) -> None:
    # Flipping a bit of the second-to-last block flips the same bit of the pad byte (11 -> 10).
    raw = bytearray(base64.b64decode(SAFE_XML["encrypt"]))
    raw[-17] ^= 0x01
    with pytest.raises(DecryptError) as info:
        crypto.decrypt(base64.b64encode(bytes(raw)).decode())
    assert info.value.message == PAD_MESSAGE


def test_ciphertext_without_padding_is_a_decrypt_error(crypto: MessageCrypto) -> None:
    raw = decode_aes_key(KEY)
    body = b"x" * 31 + b"\x00"  # a "pad" of 0: never produced by encryption
    encrypted = AES.new(raw, AES.MODE_CBC, iv=raw[:16]).encrypt(body)
    with pytest.raises(DecryptError):
        crypto.decrypt(base64.b64encode(encrypted).decode())


# -- BadFrame ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "follow"),
    [(1000, 5 + 18), (24, 5 + 18), (0xFFFFFFFF, 5 + 18)],
    ids=["1000", "just-over", "max-uint32"],
)
def test_length_prefix_too_big(crypto: MessageCrypto, length: int, follow: int) -> None:
    encrypted = aes_encrypt_frame(frame(b"short", length=length))
    with pytest.raises(BadFrame) as info:
        crypto.decrypt(encrypted)
    err = info.value
    assert (err.status, err.errcode) == (400, -40008)
    assert err.message == f"length prefix says {length} bytes but only {follow} follow"
    assert "short" not in err.message


@pytest.mark.parametrize("size", [0, 10, 19])
def test_frame_shorter_than_its_header(crypto: MessageCrypto, size: int) -> None:
    with pytest.raises(BadFrame) as info:
        crypto.decrypt(aes_encrypt_frame(b"h" * size))
    assert info.value.message == f"decrypted frame is {size} bytes, shorter than its header"


def test_hand_made_frame_is_accepted(crypto: MessageCrypto) -> None:
    # The same construction as the failure cases above, with a correct length: it opens.
    assert crypto.decrypt(aes_encrypt_frame(frame(b"short"))) == b"short"


# -- AppIdMismatch -----------------------------------------------------------------------------


def test_other_appid_names_both_and_no_secret() -> None:
    encrypted = MessageCrypto(KEY, OTHER_APPID).encrypt(b"<xml>secret body</xml>")
    with pytest.raises(AppIdMismatch) as info:
        MessageCrypto(KEY, APPID).decrypt(encrypted)
    err = info.value
    assert (err.status, err.errcode) == (400, -40005)
    assert err.message == f"AppID in payload is {OTHER_APPID!r} but WX_APPID is {APPID!r}"
    assert_no_secrets(err, encrypted[:24], "secret body")


def test_oa_sample_refused_under_another_appid() -> None:
    with pytest.raises(AppIdMismatch) as info:
        MessageCrypto(OA_COMPAT["encoding_aes_key"], APPID).decrypt(OA_COMPAT["encrypt"])
    assert info.value.message == (
        f"AppID in payload is {OA_COMPAT['appid']!r} but WX_APPID is {APPID!r}"
    )


@pytest.mark.parametrize(
    ("tail", "shown"),
    [
        (b"", "0 bytes"),
        (APPID.encode() + b"x", "19 bytes"),
        (APPID.encode()[:-1], "17 bytes"),
        (b"wx\xff\xfe", "4 bytes"),
        (b"w" * 100, "100 bytes"),
    ],
    ids=["empty", "longer", "shorter", "not-ascii", "truncated-in-message"],
)
def test_appid_tail_must_be_exact(crypto: MessageCrypto, tail: bytes, shown: str) -> None:
    with pytest.raises(AppIdMismatch) as info:
        crypto.decrypt(aes_encrypt_frame(frame(b"msg", tail)))
    assert info.value.message == f"AppID in payload is {shown} but WX_APPID is {APPID!r}"


def test_appid_mismatch_never_shows_decrypted_message_bytes(crypto: MessageCrypto) -> None:
    encrypted = aes_encrypt_frame(frame(b"<xml>my secret order 42</xml>", length=5))
    with pytest.raises(AppIdMismatch) as info:
        crypto.decrypt(encrypted)
    assert "secret" not in info.value.message


def test_error_tree() -> None:
    for cls in (BadBase64, DecryptError, BadFrame, AppIdMismatch):
        assert issubclass(cls, WeChatError)
        assert cls("x").status == 400
