"""Bodies to fields and back, for WeChat's XML and the Mini Program's JSON.

Parsing is the part that faces the internet, so the XML parser resolves no entities, loads no
DTD, touches no network and refuses any document that declares a DOCTYPE: XXE and entity bombs
fail fast and never expand. Fields are a mapping of element name to value, where a leaf is its
text, an element with children is a nested mapping and children repeated under one parent are a
list (PROTOCOL.md §5); JSON bodies arrive as ``json.loads`` gives them.

Rendering follows one convention so replies stay declarative: a ``str`` goes out as CDATA, an
``int`` as plain text, a mapping as a nested element and a list under key ``K`` as repeated
``<K>`` elements.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from enum import Enum
from typing import Any

from lxml import etree

from .errors import MalformedBody

Fields = dict[str, Any]

#: lxml parsers must not be used by two threads at once, so each thread gets its own.
_parsers = threading.local()
#: Whitespace and byte-order marks that may stand between the parts of the prolog.
_PROLOG_SPACE = re.compile(rb"(?:\s|\xef\xbb\xbf)*")
#: Halves of a UTF-16 surrogate pair: JSON's ``\ud800`` escapes can put one alone in a string,
#: which no UTF-8 encoder (signature, store, log) will take.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Characters XML 1.0 forbids even inside CDATA; a reply carrying them would be refused.
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: Those of them that are ASCII, as bytes.
_ASCII_NOT_XML = bytes(code for code in range(0x20) if code not in b"\t\n\r")
#: Largest body read without lxml: far under lxml's 10 MB limit on one text node.
_FLAT_LIMIT = 1 << 20
#: Characters a value read without lxml may not hold (as a regex class): a carriage return,
#: which XML turns into a line feed; those XML forbids; and ``]``, allowed in a CDATA section
#: only where it does not start ``]]>``, so that the section ends where lxml would end it.
_NOT_FLAT = r"\]\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff"
#: One leaf of a flat body: a name without prefix, then one CDATA section or plain text
#: without markup or references.
_FLAT_LEAF = re.compile(
    rf"[ \t\n]*<([A-Za-z_][A-Za-z0-9_.-]*)>"
    rf"(?:<!\[CDATA\[([^{_NOT_FLAT}]*(?:\](?!\]>)[^{_NOT_FLAT}]*)*)\]\]>|([^<&{_NOT_FLAT}]*))</\1>"
)
_FLAT_END = re.compile(r"[ \t\n]*</xml>[ \t\n]*")


class BodyFormat(Enum):
    """The data format (数据格式) of a push: OA pushes are XML, Mini Programs choose."""

    XML = "xml"
    JSON = "json"


def detect_format(body: bytes) -> BodyFormat:
    """Tell XML from JSON by the first byte, since Content-Type is not reliable."""
    head = body.lstrip()[:1]
    if head == b"<":
        return BodyFormat.XML
    if head == b"{":
        return BodyFormat.JSON
    raise MalformedBody("body is neither XML (starts with '<') nor a JSON object (starts with '{')")


def parse(body: bytes, body_format: BodyFormat) -> Fields:
    """Parse a body in the given format into fields."""
    return parse_xml(body) if body_format is BodyFormat.XML else parse_json(body)


def parse_xml(body: bytes) -> Fields:
    """Parse a ``<xml>…</xml>`` body into fields.

    :raises MalformedBody: not well formed, a DOCTYPE or entity, or a root other than ``xml``.
    """
    if declares_dtd(body):
        raise MalformedBody("XML declares a DOCTYPE or ENTITY; WeChat never does, refused")
    fields = _parse_flat(body)
    return _parse_tree(body) if fields is None else fields


def _parse_flat(body: bytes) -> Fields | None:
    """The fields of a flat ``<xml>`` of leaves, read without lxml; None for any other body.

    Every envelope and almost every push WeChat sends has this shape, and reading it with
    regular expressions costs under half of building a tree, without handing the GIL to other
    threads as lxml's parser does. Whatever an XML parser would have to interpret sends the body to
    :func:`_parse_tree` instead: a prolog, attributes, nesting, entity or character references,
    comments, two CDATA sections in one element, any character of :data:`_NOT_FLAT` in plain
    text, bytes that are not UTF-8, or over :data:`_FLAT_LIMIT` bytes. So both paths give the
    same fields, and every refusal, DOCTYPE and depth limit included, stays lxml's.
    """
    if len(body) > _FLAT_LIMIT or not body.startswith(b"<xml>"):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    fields: Fields = {}
    position = len("<xml>")
    while element := _FLAT_LEAF.match(text, position):
        name, section, plain = element.groups()
        _add(fields, name, plain if section is None else section)
        position = element.end()
    return fields if _FLAT_END.fullmatch(text, position) else None


def _parse_tree(body: bytes) -> Fields:
    """Parse any ``<xml>`` body with lxml, hardened as the module's docstring says."""
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as e:
        # lxml's message quotes the body around the fault; say where it is, never what.
        raise MalformedBody(
            f"XML is not well formed at line {e.lineno}, column {e.offset} ({_error_name(e)})"
        ) from e
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise MalformedBody("XML declares a DOCTYPE; WeChat never does, refused")
    if root.tag != "xml":
        raise MalformedBody("XML root element is not <xml>")
    value = _element_value(root)
    return value if isinstance(value, dict) else {}


def declares_dtd(body: bytes) -> bool:
    """Whether the prolog, before the root element, holds a ``<!`` declaration (DOCTYPE).

    Text inside the message that merely mentions "<!DOCTYPE" is content, not a declaration,
    so only the prolog is read: processing instructions and comments are skipped with one
    ``find`` each, which keeps the scan linear in the body's length whatever it holds.
    """
    position = 0
    while True:
        position = _PROLOG_SPACE.match(body, position).end()  # type: ignore[union-attr]
        if body.startswith(b"<?", position):
            closer = b"?>"
        elif body.startswith(b"<!--", position):
            closer = b"-->"
        else:
            return body.startswith(b"<!", position) and not body.startswith(b"<![CDATA[", position)
        end = body.find(closer, position + 2)
        if end < 0:
            return False
        position = end + len(closer)


def _error_name(error: etree.XMLSyntaxError) -> str:
    """libxml2's name for a syntax error, e.g. ERR_TAG_NAME_MISMATCH: it carries no body bytes."""
    entry: Any = getattr(error.error_log, "last_error", None)  # lxml-stubs do not declare it
    return str(entry.type_name) if entry is not None else "syntax error"


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            encoding="utf-8",
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        _parsers.parser = parser
    return parser


def _element_value(element: etree._Element) -> Any:
    """A leaf's text, or its children as fields; the parser leaves entities as the only
    children that are not elements."""
    if not len(element):
        return element.text or ""
    result: Fields = {}
    for child in element:
        name = child.tag
        if not isinstance(name, str):
            raise MalformedBody("XML contains an entity reference; WeChat never sends one, refused")
        _add(result, name, _element_value(child) if len(child) else child.text or "")
    return result


def _add(fields: Fields, name: str, value: Any) -> None:
    """Add a child's value: the first under its name, repeated ones as a list in order."""
    if name not in fields:
        fields[name] = value
    elif isinstance(fields[name], list):
        fields[name].append(value)
    else:
        fields[name] = [fields[name], value]


def parse_json(body: bytes) -> Fields:
    """Parse a JSON object body; integers of any size stay integers, never floats.

    :raises MalformedBody: not valid JSON, nested absurdly deep, not an object, or a string
        holding half of a surrogate pair (valid JSON, but not text).
    """
    try:
        value = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise MalformedBody(f"JSON is not valid: not UTF-8 at byte {e.start}") from e
    except json.JSONDecodeError as e:  # its msg names what was expected, never what was sent
        raise MalformedBody(
            f"JSON is not valid: {e.msg} at line {e.lineno}, column {e.colno}"
        ) from e
    except ValueError as e:  # an integer of over 4,300 digits
        raise MalformedBody("JSON is not valid: a number has too many digits") from e
    except RecursionError as e:
        raise MalformedBody("JSON is not valid: nested too deep") from e
    if not isinstance(value, dict):
        raise MalformedBody(f"JSON body is a {type(value).__name__}, expected an object")
    if _holds_lone_surrogate(value):
        raise MalformedBody("JSON string escapes half of a surrogate pair; it is not text")
    return value


def _holds_lone_surrogate(value: object) -> bool:
    """Whether any key or string in a parsed JSON value holds an unpaired surrogate.

    An explicit stack, not recursion: the parser accepted the nesting, this must too.
    """
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def cdata(text: str) -> str:
    """Wrap text in CDATA so that any content survives, including ``]]>``.

    A CDATA section cannot contain its own terminator, so every ``]]>`` is split across two
    sections: ``]]`` ends the first, ``>`` starts the second.
    """
    clean = text if _is_clean_ascii(text) else _NOT_XML_CHARS.sub("", text)
    return "<![CDATA[" + clean.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _is_clean_ascii(text: str) -> bool:
    """Whether ``text`` is ASCII without the control characters XML forbids.

    Deleting those bytes and comparing lengths is one pass of C, a quarter of what the regular
    expression costs on the 400-odd characters of an ``Encrypt`` value.
    """
    if not text.isascii():
        return False
    raw = text.encode("ascii")
    return len(raw.translate(None, _ASCII_NOT_XML)) == len(raw)


def render_xml(fields: Mapping[str, Any]) -> bytes:
    """Render fields as a ``<xml>`` document in UTF-8."""
    parts: list[str] = ["<xml>"]
    _render_children(fields, parts)
    parts.append("</xml>")
    return "".join(parts).encode("utf-8")


def _render_children(fields: Mapping[str, Any], parts: list[str]) -> None:
    """Append each field as elements; a plain ``str`` or ``int`` in one piece, without the
    isinstance checks against :class:`Mapping` that the other values need."""
    for name, value in fields.items():
        for item in value if isinstance(value, list) else (value,):
            kind = type(item)
            if kind is str:
                parts.append(f"<{name}>{cdata(item)}</{name}>")
            elif kind is int:
                parts.append(f"<{name}>{item}</{name}>")
            else:
                parts.append(f"<{name}>")
                _render_value(name, item, parts)
                parts.append(f"</{name}>")


def _render_value(name: str, item: object, parts: list[str]) -> None:
    if isinstance(item, Mapping):
        _render_children(item, parts)
    elif isinstance(item, bool) or not isinstance(item, (str, int)):
        raise TypeError(f"field {name} is a {type(item).__name__}; use str, int or dict")
    elif isinstance(item, int):
        parts.append(str(item))
    else:
        parts.append(cdata(item))


def render_json(fields: Mapping[str, Any]) -> bytes:
    """Render fields as compact UTF-8 JSON, the way the Mini Program docs show it."""
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render(fields: Mapping[str, Any], body_format: BodyFormat) -> bytes:
    """Render fields in the given format."""
    return render_xml(fields) if body_format is BodyFormat.XML else render_json(fields)
