"""signature.py: WeChat's sha1-of-sorted-parts signatures and the timestamp window."""

from __future__ import annotations

import hashlib
import hmac
import itertools

import pytest

from app.wechat import signature
from app.wechat.errors import SignatureError, StaleTimestamp
from app.wechat.signature import DEFAULT_TOLERANCE, check_timestamp, sign, verify
from tests.peer import load_example

HANDSHAKE = load_example("handshake")
SAFE_XML = load_example("safe_push_xml")
REPLY_XML = load_example("encrypted_reply_xml")
SAFE_JSON = load_example("safe_push_json")
MP_HANDSHAKE = load_example("mp_handshake")
MP_PUSH = load_example("mp_safe_push_json")
MP_REPLY = load_example("mp_encrypted_reply_json")
OA_COMPAT = load_example("oa_compatible_push_xml")
REPEATED = load_example("repeated_value_signature")

TOKEN = "weixinpush2026"
TS = "1732406400"
NONCE = "1234567890"
GOOD = "11352e78a472c4c46c8e175593e3cb642f2ec70c"
MISMATCH = "signature does not match; check that WX_TOKEN equals the console's Token"


# -- sign: every worked example ----------------------------------------------------------------


def test_handshake_vector_sorts_parts_as_plain_strings() -> None:
    query = HANDSHAKE["query"]
    parts = (HANDSHAKE["token"], query["timestamp"], query["nonce"])
    assert sorted(parts) == HANDSHAKE["sorted_parts"]
    joined = "".join(HANDSHAKE["sorted_parts"]).encode()
    assert hashlib.sha1(joined).hexdigest() == query["signature"]
    assert sign(*parts) == query["signature"]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_sign_ignores_argument_order(order: tuple[int, ...]) -> None:
    parts = (TOKEN, TS, NONCE)
    assert sign(*(parts[i] for i in order)) == GOOD


def test_repeated_value_vector() -> None:
    ex = REPEATED
    assert sorted([ex["token"], ex["timestamp"], ex["nonce"]]) == ex["sorted_parts"]
    assert sign(ex["token"], ex["timestamp"], ex["nonce"]) == ex["signature"]


def test_mp_handshake_vector() -> None:
    q = MP_HANDSHAKE["query"]
    assert sign(MP_HANDSHAKE["token"], q["timestamp"], q["nonce"]) == q["signature"]


@pytest.mark.parametrize(
    ("example", "expected_signature", "expected_msg_signature"),
    [
        (SAFE_XML, SAFE_XML["signature"], SAFE_XML["msg_signature"]),
        (SAFE_JSON, SAFE_XML["signature"], SAFE_JSON["msg_signature"]),
    ],
    ids=["xml", "json"],
)
def test_safe_push_signatures(
    example: dict[str, str], expected_signature: str, expected_msg_signature: str
) -> None:
    token, ts, nonce = example["token"], example["timestamp"], example["nonce"]
    assert sign(token, ts, nonce) == expected_signature
    assert sign(token, ts, nonce, example["encrypt"]) == expected_msg_signature


def test_encrypted_reply_msg_signature() -> None:
    ex = REPLY_XML
    assert sign(ex["token"], ex["timestamp"], ex["nonce"], ex["encrypt"]) == ex["msg_signature"]


def test_mp_push_and_reply_vectors() -> None:
    q = MP_PUSH["query"]
    token = MP_PUSH["token"]
    encrypt = MP_PUSH["body"].split('"Encrypt":"')[1].rstrip('"}')
    assert sign(token, q["timestamp"], q["nonce"]) == q["signature"]
    assert sign(token, q["timestamp"], q["nonce"], encrypt) == q["msg_signature"]
    r = MP_REPLY
    assert sign(r["token"], r["timestamp"], r["nonce"], r["encrypt"]) == r["msg_signature"]


def test_oa_compatible_vectors() -> None:
    q = OA_COMPAT["query"]
    token = OA_COMPAT["token"]
    assert sign(token, q["timestamp"], q["nonce"]) == q["signature"]
    assert sign(token, q["timestamp"], q["nonce"], OA_COMPAT["encrypt"]) == q["msg_signature"]


def test_sign_is_lowercase_hex_of_utf8() -> None:
    result = sign("令牌", "1", "2")
    assert result == hashlib.sha1("12令牌".encode()).hexdigest()
    assert result == result.lower() and len(result) == 40


# -- verify ------------------------------------------------------------------------------------


def test_verify_accepts_the_vector() -> None:
    assert verify(GOOD, TOKEN, TS, NONCE) is None


def test_verify_accepts_uppercase_hex() -> None:
    verify(GOOD.upper(), TOKEN, TS, NONCE)


@pytest.mark.parametrize(
    "received",
    [
        "",
        GOOD[:-1],
        GOOD + "0",
        GOOD[:-1] + ("d" if GOOD[-1] != "d" else "e"),
        "0" * 40,
        "签名" * 20,
        " " + GOOD,
    ],
    ids=["empty", "short", "long", "one-char", "zeros", "non-ascii", "leading-space"],
)
def test_verify_refuses_a_broken_signature(received: str) -> None:
    with pytest.raises(SignatureError) as info:
        verify(received, TOKEN, TS, NONCE)
    err = info.value
    assert err.status == 403
    assert err.errcode == -40001
    assert err.message == MISMATCH
    assert str(err) == MISMATCH


def test_verify_refuses_another_token_without_naming_it() -> None:
    with pytest.raises(SignatureError) as info:
        verify(GOOD, "weixinpush2027", TS, NONCE)
    assert info.value.message == MISMATCH
    assert "weixinpush" not in str(info.value)


def test_verify_names_msg_signature() -> None:
    ex = SAFE_XML
    with pytest.raises(SignatureError) as info:
        verify(
            ex["signature"],
            ex["token"],
            ex["timestamp"],
            ex["nonce"],
            ex["encrypt"],
            what="msg_signature",
        )
    assert info.value.message == (
        "msg_signature does not match; check that WX_TOKEN equals the console's Token"
    )
    assert ex["encrypt"][:16] not in info.value.message


def test_verify_compares_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(signature.hmac, "compare_digest", spy)
    verify(GOOD, TOKEN, TS, NONCE)
    with pytest.raises(SignatureError):
        verify("0" * 40, TOKEN, TS, NONCE)
    assert calls == [(GOOD.encode(), GOOD.encode()), (GOOD.encode(), b"0" * 40)]


# -- check_timestamp ---------------------------------------------------------------------------

NOW = 1732406400


def test_default_tolerance_is_five_minutes() -> None:
    assert DEFAULT_TOLERANCE == 300


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_timestamp_inside_the_window(offset: int) -> None:
    assert check_timestamp(str(NOW + offset), now=NOW) == NOW + offset


def test_timestamp_too_old() -> None:
    with pytest.raises(StaleTimestamp) as info:
        check_timestamp(str(NOW - 301), now=NOW)
    err = info.value
    assert (err.status, err.errcode) == (403, 0)
    assert err.message == (
        "timestamp 1732406099 is 301 s old; limit 300 s (replay, or a server clock that needs NTP)"
    )


def test_timestamp_too_new() -> None:
    with pytest.raises(StaleTimestamp) as info:
        check_timestamp(str(NOW + 301), now=NOW)
    assert info.value.message == (
        "timestamp 1732406701 is 301 s ahead of server time; limit 300 s"
        " (replay, or a server clock that needs NTP)"
    )


def test_custom_tolerance() -> None:
    assert check_timestamp(str(NOW - 10), now=NOW, tolerance=10) == NOW - 10
    with pytest.raises(StaleTimestamp) as info:
        check_timestamp(str(NOW - 11), now=NOW, tolerance=10)
    assert info.value.message.startswith("timestamp 1732406389 is 11 s old; limit 10 s")


@pytest.mark.parametrize("timestamp", ["0", "1409735669", str(NOW + 10**9)])
def test_zero_tolerance_disables_the_window(timestamp: str) -> None:
    assert check_timestamp(timestamp, now=NOW, tolerance=0) == int(timestamp)


@pytest.mark.parametrize(
    "timestamp",
    [
        "abc",
        "",
        "-5",
        "1.5e9",
        " 1732406400",
        "１７３２４０６４００",
        "1" * 13,
        "9" * 100,
        "1\nforged",
    ],
    ids=[
        "letters",
        "empty",
        "negative",
        "float",
        "space",
        "fullwidth",
        "13-digits",
        "long",
        "newline",
    ],
)
def test_timestamp_that_is_not_a_unix_time(timestamp: str) -> None:
    with pytest.raises(StaleTimestamp) as info:
        check_timestamp(timestamp, now=NOW, tolerance=0)
    assert info.value.status == 403
    # Said what was wrong, never what was sent: a query value must not reach a log line.
    assert info.value.message == f"timestamp is not a Unix time ({len(timestamp)} characters)"
