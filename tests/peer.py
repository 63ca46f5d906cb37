"""WeChat's side of the push protocol, built on wechatpy and the standard library only.

Tests play the WeChat server with it: it signs handshakes, signs and encrypts pushes in every
mode (plaintext, compatible, safe) and format (XML, JSON) exactly as WeChat sends them, and
verifies and decrypts the encrypted replies our service sends back. Signatures come from
``wechatpy.utils.WeChatSigner`` and AES from ``wechatpy.crypto.PrpCrypto``/``WeChatCrypto``, so
every round trip through this module cross-checks our code against an implementation we did not
write. It must never import ``app``: a bug shared by both sides would go unseen.

wechatpy has no fixed random prefix (needed to reproduce PROTOCOL.md's worked examples byte for
byte) and no JSON envelopes; both are small additions here, on top of wechatpy's own classes.

Example::

    peer = WeChatPeer("weixinpush2026", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
                      "wx1a2b3c4d5e6f7a8b")
    query, body = peer.push(text_xml("hello"), mode="safe", body_format="xml",
                            timestamp=1732406400, nonce="1320562132")
    # ... send query + body to the service, get `answer` back ...
    reply = peer.open_reply(answer, body_format="xml")
"""

from __future__ import annotations

import base64
import hmac
import json
import re
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import Any, Literal
from xml.parsers.expat import ExpatError

import xmltodict  # type: ignore[import-untyped]
from wechatpy.crypto import PrpCrypto, WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import WeChatSigner

#: The console's message encryption modes (消息加解密方式), as PROTOCOL.md §1 names them.
PeerMode = Literal["plaintext", "compatible", "safe"]
#: The data formats of a push: OA pushes are always XML, Mini Programs choose.
PeerFormat = Literal["xml", "json"]

MODES: tuple[str, ...] = ("plaintext", "compatible", "safe")
FORMATS: tuple[str, ...] = ("xml", "json")

#: The account's original ID that pushes are addressed to by default.
ACCOUNT_ID = "gh_0123456789ab"
#: The OpenID pushes come from by default.
OPENID = "oAbCdEfGhIjKlMnOpQrStUvWxYz0"

DATA_DIR = Path(__file__).parent / "data"

_REPLY_ENVELOPE_KEYS = {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}


class PeerError(Exception):
    """What WeChat would refuse in an answer: a bad MsgSignature, AppID or envelope shape."""


class _FixedPrefixPrpCrypto(PrpCrypto):  # type: ignore[misc]
    """wechatpy's PrpCrypto with the 16 "random" bytes chosen by the caller."""

    def __init__(self, key: bytes, prefix: bytes) -> None:
        super().__init__(key)
        self._prefix = prefix

    def get_random_string(self) -> bytes:
        return self._prefix


class WeChatPeer:
    """The WeChat server for one account: signs, encrypts and reads like WeChat does.

    :param token: the console's Token.
    :param encoding_aes_key: the console's 43-character EncodingAESKey; "" for an account that
        only uses plaintext mode (encrypted pushes then raise ``ValueError``).
    :param appid: the AppID carried inside every encrypted frame.
    """

    def __init__(self, token: str, encoding_aes_key: str = "", appid: str = "") -> None:
        self.token = token
        self.encoding_aes_key = encoding_aes_key
        self.appid = appid
        self._crypto: WeChatCrypto | None = None
        if encoding_aes_key:
            # wechatpy's own key decoding: base64decode(key + "="), asserted to be 32 bytes.
            self._crypto = WeChatCrypto(token, encoding_aes_key, appid)

    # -- signatures -------------------------------------------------------------------------

    @staticmethod
    def sign(*parts: str) -> str:
        """Sign ``parts`` with wechatpy's signer: sha1 of the sorted concatenation, hex."""
        signer = WeChatSigner()
        signer.add_data(*parts)
        return str(signer.signature)

    def handshake_query(self, echostr: str, *, timestamp: int | str, nonce: str) -> dict[str, str]:
        """Return the query of the console's GET handshake (PROTOCOL.md §2)."""
        ts = str(timestamp)
        return {
            "signature": self.sign(self.token, ts, nonce),
            "echostr": echostr,
            "timestamp": ts,
            "nonce": nonce,
        }

    # -- AES --------------------------------------------------------------------------------

    @property
    def key(self) -> bytes:
        """The 32-byte AES key, as wechatpy decodes it."""
        return bytes(self._require_crypto().key)

    def encrypt(self, message: bytes | str, *, prefix: bytes | str | None = None) -> str:
        """Return the ``Encrypt`` value for ``message``, encrypted by wechatpy.

        :param prefix: the 16 bytes that start the frame; wechatpy's random string by default,
            fixed to reproduce a worked example.
        """
        crypto = self._require_crypto()
        if prefix is None:
            prp = PrpCrypto(crypto.key)
        else:
            raw = prefix.encode("utf-8") if isinstance(prefix, str) else prefix
            if len(raw) != 16:
                raise ValueError(f"prefix must be 16 bytes (got {len(raw)})")
            prp = _FixedPrefixPrpCrypto(crypto.key, raw)
        return bytes(prp.encrypt(message, self.appid)).decode("ascii")

    def decrypt(self, encrypted: str) -> bytes:
        """Return the message inside an ``Encrypt`` value, decrypted by wechatpy.

        wechatpy returns text, so the message must be UTF-8 (every WeChat message is).

        :raises PeerError: the frame carries another AppID.
        """
        crypto = self._require_crypto()
        try:
            text = PrpCrypto(crypto.key).decrypt(encrypted, self.appid)
        except InvalidAppIdException as e:
            raise PeerError(f"frame does not carry AppID {self.appid!r}") from e
        return str(text).encode("utf-8")

    # -- pushes -----------------------------------------------------------------------------

    def push(
        self,
        body: bytes | str,
        *,
        mode: PeerMode | Enum = "plaintext",
        body_format: PeerFormat | Enum = "xml",
        timestamp: int | str,
        nonce: str,
        openid: str | None = None,
        prefix: bytes | str | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """Return the query and body of a POSTed push, exactly as WeChat sends them (§3).

        :param body: the plaintext message (XML or JSON, in ``body_format``).
        :param mode: ``"plaintext"``, ``"compatible"`` or ``"safe"``; an Enum whose value is
            one of these (such as the service's own ``Mode``) works too.
        :param body_format: ``"xml"`` or ``"json"`` (or an Enum with that value).
        :param openid: the ``openid`` query parameter; taken from the message's
            ``FromUserName`` by default, left out when ``""`` or not derivable.
        :param prefix: fixed 16-byte frame prefix for worked examples.
        :return: ``(query, body)``; the query has ``signature``, ``timestamp``, ``nonce``,
            ``openid`` when known and, in encrypted modes, ``encrypt_type=aes`` and
            ``msg_signature``. Compatible mode's body is the message plus ``Encrypt``; safe
            mode's is ``ToUserName`` and ``Encrypt`` only.
        """
        message = body.encode("utf-8") if isinstance(body, str) else body
        chosen_mode = _choice(mode, MODES, "mode")
        chosen_format = _choice(body_format, FORMATS, "body_format")
        ts = str(timestamp)
        query = {"signature": self.sign(self.token, ts, nonce), "timestamp": ts, "nonce": nonce}
        user = _peek(message, chosen_format, "FromUserName") if openid is None else openid
        if user:
            query["openid"] = user
        if chosen_mode == "plaintext":
            return query, message

        encrypted = self.encrypt(message, prefix=prefix)
        query["encrypt_type"] = "aes"
        query["msg_signature"] = self.sign(self.token, ts, nonce, encrypted)
        if chosen_mode == "safe":
            outer = {
                "ToUserName": _peek(message, chosen_format, "ToUserName"),
                "Encrypt": encrypted,
            }
            if chosen_format == "xml":
                return query, xml_body(outer)
            return query, json_body(outer)
        return query, _compatible_body(message, chosen_format, encrypted)

    # -- replies ----------------------------------------------------------------------------

    def open_reply(self, body: bytes, *, body_format: PeerFormat | Enum) -> bytes:
        """Read the service's answer as WeChat would: verify and decrypt an encrypted reply.

        An encrypted reply envelope (``Encrypt``, ``MsgSignature``, ``TimeStamp``, ``Nonce``;
        §4) has its ``MsgSignature`` checked and its ``Encrypt`` decrypted by wechatpy's
        ``WeChatCrypto.decrypt_message``; any other answer (a plain reply, ``success``, an
        empty body) is returned unchanged.

        :param body_format: the format the push was in; JSON envelopes must carry
            ``TimeStamp`` as a number and ``Nonce`` as a string, as the MP doc shows.
        :return: the plaintext reply.
        :raises PeerError: the envelope is misshapen, its MsgSignature or AppID is wrong.
        """
        chosen_format = _choice(body_format, FORMATS, "body_format")
        envelope = _reply_envelope(body, chosen_format)
        if envelope is None:
            return body
        if set(envelope) != _REPLY_ENVELOPE_KEYS:
            raise PeerError(
                f"reply envelope has keys {sorted(envelope)}, expected Encrypt, "
                "MsgSignature, TimeStamp, Nonce"
            )
        timestamp, nonce = envelope["TimeStamp"], envelope["Nonce"]
        if chosen_format == "json" and (
            not isinstance(timestamp, int) or isinstance(timestamp, bool)
        ):
            raise PeerError(f"JSON TimeStamp is {timestamp!r}, expected a number")
        if not isinstance(nonce, str) or not str(timestamp).isdigit():
            raise PeerError(f"TimeStamp {timestamp!r} / Nonce {nonce!r} are not digits / text")
        crypto = self._require_crypto()
        try:
            text = crypto.decrypt_message(
                {"Encrypt": envelope["Encrypt"]},
                envelope["MsgSignature"],
                str(timestamp),
                nonce,
            )
        except InvalidSignatureException as e:
            raise PeerError("MsgSignature does not match the reply's Encrypt") from e
        except InvalidAppIdException as e:
            raise PeerError(f"reply frame does not carry AppID {self.appid!r}") from e
        return str(text).encode("utf-8")

    def check_signature(self, signature: str, *parts: str) -> bool:
        """Whether ``signature`` signs ``parts`` (compared in constant time)."""
        return hmac.compare_digest(self.sign(*parts), signature)

    def _require_crypto(self) -> WeChatCrypto:
        if self._crypto is None:
            raise ValueError("this peer has no EncodingAESKey: encrypted modes are unavailable")
        return self._crypto


# -- bodies -------------------------------------------------------------------------------------


def cdata(text: str) -> str:
    """Wrap text in CDATA, splitting any ``]]>`` across two sections."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def xml_body(fields: Mapping[str, Any]) -> bytes:
    """Render a message as WeChat writes it: str as CDATA, int as text, nesting, repetition.

    A mapping value becomes nested elements and a list under key ``K`` repeated ``<K>``.
    """
    return ("<xml>" + _xml_children(fields) + "</xml>").encode("utf-8")


def _xml_children(fields: Mapping[str, Any]) -> str:
    out = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Mapping):
                inner = _xml_children(item)
            elif isinstance(item, int) and not isinstance(item, bool):
                inner = str(item)
            elif isinstance(item, str):
                inner = cdata(item)
            else:
                raise TypeError(f"{name}: {type(item).__name__} cannot go into a push")
            out.append(f"<{name}>{inner}</{name}>")
    return "".join(out)


def json_body(fields: Mapping[str, Any]) -> bytes:
    """Render a message as the Mini Program's JSON push: compact UTF-8."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def as_xml_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """What ``fields`` look like after an XML round trip: every leaf becomes text."""
    result: dict[str, Any] = {}
    for name, value in fields.items():
        items = [_as_text(item) for item in (value if isinstance(value, list) else [value])]
        result[name] = items if isinstance(value, list) else items[0]
    return result


def _as_text(value: Any) -> Any:
    if isinstance(value, Mapping):
        return as_xml_fields(value)
    return str(value)


def text_fields(
    content: str,
    *,
    to_user: str = ACCOUNT_ID,
    from_user: str = OPENID,
    create_time: int = 1732406400,
    msg_id: int = 24812345678901234,
) -> dict[str, Any]:
    """The fields of a user's text message (§5)."""
    return {
        "ToUserName": to_user,
        "FromUserName": from_user,
        "CreateTime": create_time,
        "MsgType": "text",
        "Content": content,
        "MsgId": msg_id,
    }


def event_fields(
    event: str,
    *,
    event_key: str | None = None,
    to_user: str = ACCOUNT_ID,
    from_user: str = OPENID,
    create_time: int = 1732406400,
    **extra: Any,
) -> dict[str, Any]:
    """The fields of an event push (§5); ``extra`` adds event-specific fields in order."""
    fields: dict[str, Any] = {
        "ToUserName": to_user,
        "FromUserName": from_user,
        "CreateTime": create_time,
        "MsgType": "event",
        "Event": event,
    }
    if event_key is not None:
        fields["EventKey"] = event_key
    fields.update(extra)
    return fields


def text_xml(content: str, **kwargs: Any) -> bytes:
    """A user's text message as an XML push body."""
    return xml_body(text_fields(content, **kwargs))


def text_json(content: str, **kwargs: Any) -> bytes:
    """A user's text message as a Mini Program JSON push body."""
    return json_body(text_fields(content, **kwargs))


def event_xml(event: str, **kwargs: Any) -> bytes:
    """An event as an XML push body."""
    return xml_body(event_fields(event, **kwargs))


def event_json(event: str, **kwargs: Any) -> bytes:
    """An event as a Mini Program JSON push body."""
    return json_body(event_fields(event, **kwargs))


def load_example(name: str) -> dict[str, Any]:
    """Load a worked example of PROTOCOL.md §8/§9 from ``tests/data/<name>.json``."""
    data: dict[str, Any] = json.loads((DATA_DIR / f"{name}.json").read_text("utf-8"))
    return data


def b64_to_bytes(value: str) -> bytes:
    """Decode standard base64 (for tests that look inside an ``Encrypt`` value)."""
    return base64.b64decode(value, validate=True)


# -- internals ----------------------------------------------------------------------------------


def _choice(value: str | Enum, allowed: tuple[str, ...], what: str) -> str:
    name = value.value if isinstance(value, Enum) else value
    if name not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)} (got {name!r})")
    return str(name)


def _peek(message: bytes, body_format: str, name: str) -> str:
    """Read one top-level text field without parsing (hostile test bodies stay inert)."""
    if body_format == "json":
        try:
            value = json.loads(message)
        except (ValueError, RecursionError):
            return ""
        found = value.get(name) if isinstance(value, dict) else None
        return found if isinstance(found, str) else ""
    tag = re.escape(name.encode("ascii"))
    match = re.search(
        rb"<" + tag + rb">\s*(?:<!\[CDATA\[(.*?)\]\]>|([^<]*))\s*</" + tag + rb">",
        message,
        re.DOTALL,
    )
    if match is None:
        return ""
    return (match.group(1) or match.group(2) or b"").decode("utf-8", "replace")


def _compatible_body(message: bytes, body_format: str, encrypted: str) -> bytes:
    """The plaintext message with ``Encrypt`` added beside its fields, as the OA sample shows."""
    if body_format == "xml":
        end = message.rfind(b"</xml>")
        if end < 0:
            raise ValueError("compatible mode needs an <xml>…</xml> message")
        element = f"<Encrypt>{cdata(encrypted)}</Encrypt>".encode("ascii")
        return message[:end] + element + message[end:]
    fields = json.loads(message)
    if not isinstance(fields, dict):
        raise ValueError("compatible mode needs a JSON object message")
    return json_body({**fields, "Encrypt": encrypted})


def _reply_envelope(body: bytes, body_format: str) -> dict[str, Any] | None:
    """The encrypted reply envelope in ``body``, or None when the answer is not one."""
    head = body.lstrip()[:1]
    if body_format == "json":
        if head != b"{":
            return None
        try:
            value = json.loads(body)
        except ValueError as e:
            raise PeerError("reply is not valid JSON") from e
    else:
        if head != b"<":
            return None
        try:
            value = xmltodict.parse(body, disable_entities=True).get("xml")
        except ExpatError as e:
            raise PeerError("reply is not well-formed XML") from e
    if not isinstance(value, dict) or "Encrypt" not in value:
        return None
    return dict(value)
