"""Signing and encrypting what the fuzzer sends, written apart from the service's own code.

A case must carry a correct ``signature`` and ``msg_signature`` and be encrypted with the right
key, or it stops at the first check and tests nothing else. The signing and the AES frame are
written here from PROTOCOL.md §2–§4 rather than taken from :mod:`app.wechat`, for two reasons:
a bug shared by both sides would go unseen, and a fuzzer must be able to build frames the
service's encryptor never would (another AppID, a lying length prefix, broken padding).
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import struct
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from Crypto.Cipher import AES

from app.wechat.codec import BodyFormat
from app.wechat.envelope import Mode

#: The account the fuzzed app serves.
TOKEN = "fuzzToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx1a2b3c4d5e6f7a8b"
ACCOUNT = "gh_0123456789ab"
#: The callback path of the fuzzed app.
PATH = "/wx"

#: Query pairs in order, names may repeat; a None value sends the bare name (``&x&``).
Query = list[tuple[str, str | None]]


@dataclass(frozen=True)
class Request:
    """One HTTP request to the callback URL, exactly as it is sent."""

    method: str
    #: The raw query string, already percent-encoded.
    query: str
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = field(default=())


#: Builds the request that carries a message: signs it now and encrypts it if the case does.
Carrier = Callable[[bytes], Request]


def post(query: Query, body: bytes) -> Request:
    """A push: the body POSTed with the query."""
    return Request("POST", encode_query(query), body)


def sign(*parts: str) -> str:
    """WeChat's signature: sha1 over the sorted concatenation, lowercase hex (PROTOCOL.md §2)."""
    return hashlib.sha1("".join(sorted(parts)).encode("utf-8", "surrogatepass")).hexdigest()


def encode_query(pairs: Sequence[tuple[str, str | None]]) -> str:
    """A query string from pairs, repeated names kept, text percent-encoded as UTF-8."""
    return "&".join(
        f"{_quote(name)}={_quote(value)}" if value is not None else _quote(name)
        for name, value in pairs
    )


def _quote(text: str) -> str:
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")


class Wire:
    """Builds signed (and encrypted) requests for the fuzzed account."""

    def __init__(self, token: str = TOKEN, aes_key: str = AES_KEY, appid: str = APPID) -> None:
        self.token = token
        self.appid = appid.encode("ascii")
        self._key = base64.b64decode(aes_key + "=")

    # -- the AES scheme (PROTOCOL.md §4) -------------------------------------------------

    def frame(
        self, message: bytes, *, appid: bytes | None = None, length: int | None = None
    ) -> bytes:
        """``random(16) ‖ uint32 len ‖ message ‖ appid``; ``length`` and ``appid`` may lie."""
        size = len(message) if length is None else length
        own = self.appid if appid is None else appid
        return os.urandom(16) + struct.pack(">I", size) + message + own

    def seal(self, frame: bytes, *, padding: bytes | None = None) -> str:
        """``Encrypt`` for a frame: PKCS#7 to 32 bytes unless ``padding`` replaces it.

        A replacement must leave the frame a whole number of AES blocks.
        """
        if padding is None:
            count = 32 - len(frame) % 32
            padding = bytes([count]) * count
        cipher = AES.new(self._key, AES.MODE_CBC, iv=self._key[:16])
        return base64.b64encode(cipher.encrypt(frame + padding)).decode("ascii")

    def encrypt(self, message: bytes) -> str:
        """``Encrypt`` for a message, as WeChat makes it."""
        return self.seal(self.frame(message))

    def open(self, encrypted: str) -> bytes:
        """The message inside an ``Encrypt`` value, as WeChat would read a reply.

        :raises ValueError: what WeChat would refuse: not base64, padding, length, AppID.
        """
        ciphertext = base64.b64decode(encrypted, validate=True)
        if not ciphertext or len(ciphertext) % 16:
            raise ValueError(f"Encrypt is {len(ciphertext)} bytes, not whole AES blocks")
        padded = AES.new(self._key, AES.MODE_CBC, iv=self._key[:16]).decrypt(ciphertext)
        count = padded[-1]
        if not 1 <= count <= 32 or padded[-count:] != bytes([count]) * count:
            raise ValueError("Encrypt has broken padding")
        frame = padded[:-count]
        (length,) = struct.unpack(">I", frame[16:20])
        if frame[20 + length :] != self.appid:
            raise ValueError("Encrypt carries a wrong length or another AppID")
        return frame[20 : 20 + length]

    # -- requests (PROTOCOL.md §3) --------------------------------------------------------

    def signed_query(self, rng: random.Random, *, encrypted: str | None = None) -> Query:
        """The query WeChat sends with a push: signed now, with ``msg_signature`` if encrypted."""
        timestamp = str(int(time.time()))
        nonce = str(rng.randrange(10**10))
        query: Query = [
            ("signature", sign(self.token, timestamp, nonce)),
            ("timestamp", timestamp),
            ("nonce", nonce),
            ("openid", "oFuzzUser"),
        ]
        if encrypted is not None:
            query.append(("encrypt_type", "aes"))
            query.append(("msg_signature", sign(self.token, timestamp, nonce, encrypted)))
        return query

    def push(
        self,
        message: bytes,
        mode: Mode,
        body_format: BodyFormat,
        rng: random.Random,
        *,
        encrypted: str | None = None,
    ) -> tuple[Query, bytes]:
        """The query and body of a push carrying ``message`` in ``mode``.

        :param encrypted: the ``Encrypt`` value to send instead of ``message`` encrypted, for
            envelopes that are broken on purpose.
        """
        if mode is Mode.PLAINTEXT:
            return self.signed_query(rng), message
        if encrypted is None:
            encrypted = self.encrypt(message)
        query = self.signed_query(rng, encrypted=encrypted)
        if mode is Mode.SAFE:
            return query, envelope(body_format, encrypted)
        return query, compatible_body(message, body_format, encrypted)

    def carrier(self, mode: Mode, body_format: BodyFormat, rng: random.Random) -> Carrier:
        """How a case carries its message: as a push in ``mode``, signed when carried."""
        return lambda message: post(*self.push(message, mode, body_format, rng))


def envelope(body_format: BodyFormat, encrypted: str) -> bytes:
    """The body of a safe-mode push: ``ToUserName`` and ``Encrypt`` only."""
    if body_format is BodyFormat.JSON:
        return f'{{"ToUserName":"{ACCOUNT}","Encrypt":"{encrypted}"}}'.encode()
    return (
        f"<xml><ToUserName><![CDATA[{ACCOUNT}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
    ).encode()


def compatible_body(message: bytes, body_format: BodyFormat, encrypted: str) -> bytes:
    """The message with ``Encrypt`` beside its fields; the message as it is, however broken."""
    if body_format is BodyFormat.JSON:
        end = message.rfind(b"}")
        if end < 0:
            return f'{{"Encrypt":"{encrypted}"}}'.encode()
        head = message[:end].rstrip()
        comma = b"" if head.endswith(b"{") else b","
        return head + comma + f'"Encrypt":"{encrypted}"'.encode() + message[end:]
    end = message.rfind(b"</xml>")
    element = f"<Encrypt><![CDATA[{encrypted}]]></Encrypt>".encode()
    if end < 0:
        return message + element
    return message[:end] + element + message[end:]
