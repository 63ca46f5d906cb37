"""The AES scheme of safe and compatible mode (PROTOCOL.md §4).

A message travels as ``base64(AES-256-CBC(key, iv=key[:16], pkcs7_32(frame)))`` where
``frame = random(16) ‖ uint32 big-endian len(msg) ‖ msg ‖ appid``. Everything here works on
bytes; the callers decode text once, where the protocol says it is UTF-8.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import struct

from Crypto.Cipher import AES
from Crypto.Cipher._mode_cbc import CbcMode

from .errors import AppIdMismatch, BadBase64, BadFrame, DecryptError

#: WeChat pads to 32-byte blocks, not AES's 16, so pad values run from 1 to 32.
PAD_BLOCK = 32
_KEY_PATTERN = re.compile(r"[A-Za-z0-9]{43}")
_APPID = re.compile(rb"wx[0-9a-f]{16}")
_PREFIX_LEN = 16
_HEADER_LEN = _PREFIX_LEN + 4


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """Turn the console's 43-character EncodingAESKey into the 32-byte AES key.

    Keys from the console are often not canonical base64 (the last character carries two unused
    bits), so the check is length, alphabet and a lenient decode, never a re-encode round trip.

    :raises ValueError: with a message fit for a configuration error.
    """
    if len(encoding_aes_key) != 43:
        raise ValueError(f"must be 43 characters (got {len(encoding_aes_key)})")
    if not _KEY_PATTERN.fullmatch(encoding_aes_key):
        raise ValueError("may contain only letters A-Z, a-z and digits 0-9")
    return base64.b64decode(encoding_aes_key + "=")


def pad(data: bytes) -> bytes:
    """Append PKCS#7 padding up to a multiple of 32 bytes (always 1 to 32 bytes)."""
    count = PAD_BLOCK - len(data) % PAD_BLOCK
    return data + bytes([count]) * count


def unpad(data: bytes) -> bytes:
    """Strip PKCS#7 padding, checking its value is 1..32 and that every pad byte agrees.

    :raises DecryptError: when the padding is not what encryption with this key produces.
    """
    count = data[-1] if data else 0
    if not 1 <= count <= PAD_BLOCK or count > len(data) or data[-count:] != data[-1:] * count:
        raise DecryptError("padding is invalid after decryption: wrong EncodingAESKey or tampered")
    return data[:-count]


def _xor(left: bytes, right: bytes) -> bytes:
    """``left`` XOR ``right``, for two strings of one length, in one pass of C."""
    mixed = int.from_bytes(left, "big") ^ int.from_bytes(right, "big")
    return mixed.to_bytes(len(left), "big")


class _Chain:
    """A CBC encryptor kept across messages, so its key schedule is built once, not per reply.

    A CBC cipher chains each message from the last ciphertext block it produced, and offers no
    way to reset its IV; the first block is therefore fed XORed with that block and the real IV,
    which makes it enter AES exactly as it would have under a fresh cipher. Not thread-safe:
    one caller at a time (see :meth:`MessageCrypto.encrypt`).
    """

    def __init__(self, key: bytes) -> None:
        self._iv = key[:16]
        self._cipher: CbcMode = AES.new(key, AES.MODE_CBC, iv=self._iv)
        self._last = self._iv

    def encrypt(self, padded: bytes) -> bytes:
        """AES-256-CBC of ``padded`` (whole blocks) with the IV ``key[:16]``."""
        first = _xor(padded[: AES.block_size], _xor(self._last, self._iv))
        ciphertext = self._cipher.encrypt(first + padded[AES.block_size :])
        self._last = ciphertext[-AES.block_size :]
        return ciphertext


class MessageCrypto:
    """Encrypts and decrypts message frames for one account (one key, one AppID).

    The AES key schedule is built once: decryption runs CBC as ECB plus one XOR with the
    ciphertext shifted by a block (ECB keeps no state, so threads share it), encryption through
    :class:`_Chain` objects that callers take from a pool and put back. Building a cipher per
    message cost more than using it.
    """

    def __init__(self, encoding_aes_key: str, appid: str) -> None:
        """:raises ValueError: when the key is not a valid EncodingAESKey."""
        self._key = decode_aes_key(encoding_aes_key)
        self._appid = appid.encode("ascii")
        self._ecb = AES.new(self._key, AES.MODE_ECB)
        #: Idle encryptors. ``list.pop`` and ``append`` are atomic, so each is used by one
        #: caller at a time, whether callers are threads or greenlets (for which a
        #: ``threading.local`` patched by gevent would build one per request); the pool grows
        #: to the most encryptions ever run at once.
        self._idle_chains: list[_Chain] = []

    def encrypt(self, message: bytes, *, prefix: bytes | None = None) -> str:
        """Return the base64 ``Encrypt`` value carrying ``message``.

        :param prefix: the 16 random bytes that start the frame; fresh from :mod:`secrets`
            unless a worked example needs fixed ones.
        """
        prefix = secrets.token_bytes(_PREFIX_LEN) if prefix is None else prefix
        if len(prefix) != _PREFIX_LEN:
            raise ValueError(f"prefix must be {_PREFIX_LEN} bytes (got {len(prefix)})")
        frame = prefix + struct.pack(">I", len(message)) + message + self._appid
        try:
            chain = self._idle_chains.pop()
        except IndexError:
            chain = _Chain(self._key)
        ciphertext = chain.encrypt(pad(frame))
        self._idle_chains.append(chain)
        return base64.b64encode(ciphertext).decode("ascii")

    def decrypt(self, encrypted: str) -> bytes:
        """Return the message inside an ``Encrypt`` value, after checking every layer.

        :raises BadBase64: not base64, or not whole AES blocks.
        :raises DecryptError: padding wrong, which is what another key produces.
        :raises BadFrame: the length prefix points outside the frame.
        :raises AppIdMismatch: the frame was made for another account.
        """
        try:
            ciphertext = base64.b64decode(encrypted, validate=True)
        except (binascii.Error, ValueError) as e:
            raise BadBase64("Encrypt is not valid base64") from e
        if not ciphertext or len(ciphertext) % AES.block_size:
            raise BadBase64(
                f"Encrypt decodes to {len(ciphertext)} bytes, not a positive multiple of 16"
            )
        frame = unpad(self._cbc_decrypt(ciphertext))
        if len(frame) < _HEADER_LEN:
            raise BadFrame(f"decrypted frame is {len(frame)} bytes, shorter than its header")
        (length,) = struct.unpack(">I", frame[_PREFIX_LEN:_HEADER_LEN])
        end = _HEADER_LEN + length
        if end > len(frame):
            raise BadFrame(
                f"length prefix says {length} bytes but only {len(frame) - _HEADER_LEN} follow"
            )
        appid = frame[end:]
        if appid != self._appid:
            # Show what follows the message only when it is an AppID: with a short length
            # prefix those bytes are the message itself, which must not reach a log.
            shown = repr(appid.decode()) if _APPID.fullmatch(appid) else f"{len(appid)} bytes"
            raise AppIdMismatch(
                f"AppID in payload is {shown} but WX_APPID is {self._appid.decode()!r}"
            )
        return frame[_HEADER_LEN:end]

    def _cbc_decrypt(self, ciphertext: bytes) -> bytes:
        """AES-256-CBC decryption with the IV ``key[:16]``: each block's ECB decryption XOR the
        block before it."""
        previous = self._key[: AES.block_size] + ciphertext[: -AES.block_size]
        return _xor(self._ecb.decrypt(ciphertext), previous)
