"""Broken AES envelopes for the hostile family: what the crypto layer must refuse, cleanly.

Corrupt base64, ciphertext that is not whole blocks, another AppID in the frame, padding that
is not PKCS#7 to 32 bytes, a length prefix that lies, a frame shorter than its header, and an
``Encrypt`` that is not text at all (PROTOCOL.md §4).
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable

from app.wechat.codec import BodyFormat

from .wire import Wire


def forged(rng: random.Random, wire: Wire) -> tuple[str, Callable[[bytes], str]]:
    """A way to turn a message into a broken ``Encrypt`` value, and its name."""
    roll = rng.randrange(9)
    if roll == 0:
        junk = rng.choice(["!", " ", "\n", "-", "_", "=", "\u00e9", "%"])
        return f"base64 with {junk!r}", lambda m: _insert(rng, wire.encrypt(m), junk)
    if roll == 1:
        cut = rng.choice([1, 2, 4, 5])
        return f"base64 cut {cut}", lambda m: wire.encrypt(m)[:-cut]
    if roll == 2:
        return "not whole blocks", lambda m: wire.encrypt(m)[:-24] + "AAAA"
    if roll == 3:
        appid = rng.choice([b"wx0000000000000000", b"", b"wx1a2b3c4d5e6f7a8bX", b"\xff\x00"])
        return f"appid {appid!r}", lambda m: wire.seal(wire.frame(m, appid=appid))
    if roll == 4:
        delta = rng.choice([-1, 1, 10**6, 2**32 - 1, -(10**9)])
        return f"length {delta:+}", lambda m: wire.seal(
            wire.frame(m, length=max(0, min(2**32 - 1, len(m) + delta)))
        )
    if roll == 5:
        padding = rng.choice([b"\x00" * 32, b"\x21" * 32, b"\xff" * 32, b"\x01" * 31 + b"\x02"])
        return f"padding {padding[-1]}", lambda m: wire.seal(
            _aligned(wire.frame(m)), padding=padding
        )
    if roll == 6:
        size = rng.choice([0, 8, 19])
        return f"frame of {size} bytes", lambda m: wire.seal(bytes(size))
    if roll == 7:
        return "length 0", lambda m: wire.seal(wire.frame(b"", appid=m + wire.appid))
    return "random blocks", lambda m: _random_blocks(rng, len(m))


def _insert(rng: random.Random, text: str, junk: str) -> str:
    at = rng.randrange(len(text) + 1)
    return text[:at] + junk + text[at:]


def _aligned(frame: bytes) -> bytes:
    return frame + b"\x20" * (-len(frame) % 32)


def _random_blocks(rng: random.Random, size: int) -> str:
    return base64.b64encode(rng.randbytes(16 * (1 + size // 16))).decode()


def encrypt_not_text(rng: random.Random, body_format: BodyFormat, wire: Wire) -> tuple[str, bytes]:
    """An ``Encrypt`` that is not a string: the body, and what it is."""
    valid = wire.encrypt(b"<xml/>")
    if body_format is BodyFormat.JSON:
        label, value = rng.choice(
            [
                ("number", b"1"),
                ("list", b'["' + valid.encode() + b'"]'),
                ("object", b'{"a":1}'),
                ("null", b"null"),
                ("empty", b'""'),
                ("true", b"true"),
            ]
        )
        return f"Encrypt {label}", b'{"ToUserName":"gh_0123456789ab","Encrypt":' + value + b"}"
    label, element = rng.choice(
        [
            ("nested", b"<Encrypt><A>1</A></Encrypt>"),
            ("empty", b"<Encrypt/>"),
            (
                "twice",
                b"<Encrypt>%s</Encrypt><Encrypt>%s</Encrypt>" % (valid.encode(), valid.encode()),
            ),
            ("missing", b""),
            ("lowercase", b"<encrypt>%s</encrypt>" % valid.encode()),
        ]
    )
    return (
        f"Encrypt {label}",
        b"<xml><ToUserName>gh_0123456789ab</ToUserName>" + element + b"</xml>",
    )
