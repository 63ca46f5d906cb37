"""Opening a push and sealing its reply, in every mode and format (PROTOCOL.md §2–§4).

The mode is decided per request, from the query and the body, because the console's mode switch
takes effect at once and WeChat may still deliver pushes signed the old way:

* plaintext: no ``encrypt_type``; the body is the message;
* compatible: ``encrypt_type=aes``; the body has the plaintext fields *and* ``Encrypt``;
* safe: ``encrypt_type=aes``; the body has only ``ToUserName`` and ``Encrypt``.

In both encrypted modes only the decrypted message is used: the plaintext fields of compatible
mode are not covered by ``msg_signature``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from . import codec
from .codec import BodyFormat, Fields
from .crypto import MessageCrypto
from .errors import BadPayload, EncryptionRequired, MalformedBody, MissingParameter
from .signature import DEFAULT_TOLERANCE, check_timestamp, sign, verify


class Mode(Enum):
    """The console's message encryption mode (消息加解密方式)."""

    PLAINTEXT = "plaintext"
    COMPATIBLE = "compatible"
    SAFE = "safe"


@dataclass(frozen=True)
class Account:
    """What the service knows of the account it serves: the secrets that sign and encrypt."""

    #: The console's Token (令牌).
    token: str
    #: The AppID, carried inside every encrypted frame; "" when only plaintext is used.
    appid: str = ""
    #: The cipher for safe and compatible mode; None when no EncodingAESKey is configured.
    crypto: MessageCrypto | None = None


@dataclass(frozen=True)
class Push:
    """A verified push: its plaintext fields and how it travelled, so the reply can match."""

    fields: Fields
    mode: Mode
    body_format: BodyFormat
    timestamp: int
    nonce: str


def _required(query: Mapping[str, str], *names: str) -> list[str]:
    """The values of ``names``, each looked up once: a request's query is a MultiDict, whose
    lookups are Python code."""
    values = [query.get(name, "") for name in names]
    if not all(values):
        missing = [name for name, value in zip(names, values, strict=True) if not value]
        raise MissingParameter(f"query is missing {', '.join(missing)}")
    return values


def _verify_query(
    query: Mapping[str, str], token: str, *, now: int, tolerance: int
) -> tuple[int, str]:
    signature, timestamp, nonce = _required(query, "signature", "timestamp", "nonce")
    verify(signature, token, timestamp, nonce)
    return check_timestamp(timestamp, now=now, tolerance=tolerance), nonce


def verify_handshake(
    query: Mapping[str, str], token: str, *, now: int, tolerance: int = DEFAULT_TOLERANCE
) -> str:
    """Check the console's GET handshake and return the ``echostr`` to answer with.

    :raises MissingParameter: a parameter is absent.
    :raises SignatureError: the signature is not made with this token.
    :raises StaleTimestamp: the timestamp is outside the window.
    """
    (echostr,) = _required(query, "echostr")
    _verify_query(query, token, now=now, tolerance=tolerance)
    return echostr


def open_push(
    query: Mapping[str, str],
    body: bytes,
    account: Account,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
    require_encryption: bool = False,
) -> Push:
    """Verify a POSTed push and return its plaintext fields.

    Signatures are checked before anything is decrypted, the timestamp after the signature.

    :raises WeChatError: the subclass says what was wrong (see :mod:`.errors`).
    """
    timestamp, nonce = _verify_query(query, account.token, now=now, tolerance=tolerance)
    body_format = codec.detect_format(body)
    outer = codec.parse(body, body_format)
    if query.get("encrypt_type", "").lower() != "aes":
        if require_encryption:
            raise EncryptionRequired(
                "plaintext push refused: WX_REQUIRE_ENCRYPTION is on; choose safe mode"
                " (安全模式) in the console"
            )
        return Push(outer, Mode.PLAINTEXT, body_format, timestamp, nonce)

    (msg_signature,) = _required(query, "msg_signature")
    encrypted = outer.get("Encrypt")
    if not isinstance(encrypted, str) or not encrypted:
        raise MalformedBody("encrypt_type=aes but the body has no Encrypt field")
    if account.crypto is None:
        raise BadPayload(
            "push is encrypted but WX_AES_KEY is not set; copy the console's EncodingAESKey"
        )
    signed_at = query["timestamp"]
    verify(msg_signature, account.token, signed_at, nonce, encrypted, what="msg_signature")
    message = account.crypto.decrypt(encrypted)
    fields = codec.parse(message, codec.detect_format(message))
    mode = Mode.SAFE if set(outer) <= {"ToUserName", "Encrypt"} else Mode.COMPATIBLE
    return Push(fields, mode, body_format, timestamp, nonce)


def seal(
    reply: Mapping[str, Any],
    push: Push,
    account: Account,
    *,
    now: int,
    nonce: str,
    prefix: bytes | None = None,
) -> bytes:
    """Render a reply in the push's format, encrypted when the push was.

    :param now: the reply's ``TimeStamp``; also used as ``CreateTime`` by the caller.
    :param nonce: the reply envelope's ``Nonce``; any fresh digits.
    :param prefix: fixed random prefix for worked examples; fresh random bytes otherwise.
    """
    body = codec.render(reply, push.body_format)
    if push.mode is Mode.PLAINTEXT:
        return body
    if account.crypto is None:
        raise ValueError("cannot seal an encrypted reply without an EncodingAESKey")
    encrypted = account.crypto.encrypt(body, prefix=prefix)
    envelope: Fields = {
        "Encrypt": encrypted,
        "MsgSignature": sign(account.token, str(now), nonce, encrypted),
        "TimeStamp": now,
        "Nonce": nonce,
    }
    return codec.render(envelope, push.body_format)
