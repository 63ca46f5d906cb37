"""What WeChat would make of an answer: a reply it cannot read is a fault too.

A 200 answer to a handshake is its ``echostr``, exactly. A 200 answer to a push is "success",
empty, or a passive reply: well-formed XML or JSON in the push's format, encrypted when the push
was, and then with a ``MsgSignature`` that matches and an ``Encrypt`` that opens with the
account's key and AppID to a message with the four common fields (PROTOCOL.md §4, §6). The
check is written here, apart from :mod:`app.testing`, which reads replies with the service's
own codec and crypto.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import werkzeug.urls  # noqa: F401  (registers the codec error handler used below)
from lxml import etree

from .wire import Wire, sign

#: Fields every passive reply carries.
COMMON = ("ToUserName", "FromUserName", "CreateTime", "MsgType")
_ENVELOPE = {"Encrypt", "MsgSignature", "TimeStamp", "Nonce"}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def problem(
    body: bytes, wire: Wire, *, like: bytes | None = None, encrypted: bool | None = None
) -> str | None:
    """What WeChat could not read in the body of a 200 answer to a push; None if all is well.

    :param like: the push's body, when the reply must be in its format (XML or JSON).
    :param encrypted: whether the reply must be encrypted; None when either will do.
    """
    if body in (b"", b"success"):
        return None
    if like is not None and body.lstrip()[:1] != like.lstrip()[:1]:
        return f"reply begins {body.lstrip()[:1]!r}, the push {like.lstrip()[:1]!r}"
    try:
        outer = _fields(body)
        if encrypted is not None and encrypted != ("Encrypt" in outer):
            return f"reply is {'not ' if encrypted else ''}encrypted, unlike the push"
        if "Encrypt" not in outer:
            return _missing(outer)
        if set(outer) != _ENVELOPE:
            return f"encrypted reply has fields {sorted(outer)}, expected {sorted(_ENVELOPE)}"
        parts = [str(outer[name]) for name in ("TimeStamp", "Nonce", "Encrypt")]
        if sign(wire.token, *parts) != outer["MsgSignature"]:
            return "encrypted reply's MsgSignature does not match"
        return _missing(_fields(wire.open(str(outer["Encrypt"]))))
    except ValueError as e:
        return f"reply cannot be read: {str(e)[:200]}"


def handshake_problem(query: str, body: bytes) -> str | None:
    """What is wrong with a 200 answer to a handshake: it must be the ``echostr`` sent.

    The query is read as Werkzeug reads it, bytes that are not UTF-8 left percent-encoded.
    """
    pairs = parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote")
    if body.decode("utf-8", "replace") == dict(reversed(pairs)).get("echostr"):
        return None
    return "handshake answer is not the echostr sent"


def _missing(fields: dict[str, Any]) -> str | None:
    absent = [name for name in COMMON if not fields.get(name)]
    return f"reply lacks {', '.join(absent)}" if absent else None


def _fields(body: bytes) -> dict[str, Any]:
    """The top-level fields of an XML or JSON reply; ValueError when it is neither."""
    if body.lstrip().startswith(b"{"):
        value = json.loads(body.decode("utf-8"))
        if not isinstance(value, dict):
            raise ValueError("JSON reply is not an object")
        return value
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as e:
        raise ValueError(f"XML reply is not well formed: {e}") from e
    if root.tag != "xml":
        raise ValueError("XML reply's root is not <xml>")
    return {str(child.tag): child.text or len(child) for child in root}
