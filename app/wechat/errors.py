"""Everything that can be wrong with what WeChat (or someone pretending to be WeChat) sent.

Each class carries the HTTP status the callback answers with and, where one exists, the error
code of WeChat's official WXBizMsgCrypt sample, so a log line can be matched against WeChat's
documentation. Messages say what was observed and what was expected, and never contain the
token, the AES key, ciphertext or a decrypted body.

The tree::

    WeChatError                       400
    ├── MissingParameter              400  a required query parameter is absent
    ├── SignatureError                403  -40001 signature or msg_signature mismatch
    ├── StaleTimestamp                403  timestamp outside the tolerance window
    ├── EncryptionRequired            403  plaintext push while WX_REQUIRE_ENCRYPTION is on
    ├── BodyTooLarge                  413  body over WX_MAX_BODY
    ├── UnreadableBody                400  chunked framing broken, or the client went away
    └── BadPayload                    400  anything wrong with the body itself
        ├── MalformedBody             400  -40002 not well-formed XML / JSON, or hostile XML
        ├── BadBase64                 400  -40010 Encrypt is not valid base64
        ├── DecryptError              400  -40007 AES decryption or PKCS#7 padding failed
        ├── BadFrame                  400  -40008 length prefix does not fit the plaintext
        └── AppIdMismatch             400  -40005 payload was encrypted for another AppID
"""

from __future__ import annotations


class WeChatError(Exception):
    """Base class: a push or handshake that must be refused."""

    #: HTTP status the callback answers with.
    status: int = 400
    #: Error code of WeChat's WXBizMsgCrypt sample, 0 where it has none.
    errcode: int = 0

    def __init__(self, message: str) -> None:
        super().__init__(message)
        #: What was observed and what was expected; safe to log.
        self.message = message

    def __str__(self) -> str:
        return self.message


class MissingParameter(WeChatError):
    """A query parameter that WeChat always sends is absent."""

    status = 400


class SignatureError(WeChatError):
    """``signature`` or ``msg_signature`` does not match: wrong token, or not WeChat."""

    status = 403
    errcode = -40001


class StaleTimestamp(WeChatError):
    """The signed timestamp is too far from the server clock: a replay, or clock skew."""

    status = 403


class ReusedURL(WeChatError):
    """A plaintext push came on a signed URL that already carried another push: in plaintext
    mode the signature covers the URL, not the body, so this is a forged body on a replayed URL
    (WeChat signs every push anew)."""

    status = 403


class EncryptionRequired(WeChatError):
    """A plaintext push arrived although the service only accepts encrypted ones."""

    status = 403


class BodyTooLarge(WeChatError):
    """The body is larger than any push WeChat sends."""

    status = 413


class UnreadableBody(WeChatError):
    """The body could not be read: malformed chunk sizes, or a client that stopped sending."""

    status = 400


class BadPayload(WeChatError):
    """The body cannot be turned into a message."""

    status = 400


class MalformedBody(BadPayload):
    """Not well-formed XML or JSON, the wrong shape, or XML with a DTD or entities."""

    errcode = -40002


class BadBase64(BadPayload):
    """``Encrypt`` is not base64, or decodes to a length that is not whole AES blocks."""

    errcode = -40010


class DecryptError(BadPayload):
    """AES-CBC decryption gave bytes whose PKCS#7 padding is wrong: another key, or tampering."""

    errcode = -40007


class BadFrame(BadPayload):
    """The decrypted frame's length prefix points outside the frame."""

    errcode = -40008


class AppIdMismatch(BadPayload):
    """The frame is well formed but carries another account's AppID."""

    errcode = -40005
