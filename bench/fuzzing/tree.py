"""Push fields as the fuzzer builds them, and their XML and JSON bytes.

The service's own renderer (:mod:`app.wechat.codec`) is made to be safe: it drops characters XML
forbids and refuses values it cannot type. A fuzzer needs the opposite, so fields are kept in a
form that can say what the codec cannot: an :class:`Obj` is a list of ``(name, value)`` pairs, so
a field can appear twice, and a :class:`Raw` value is written out verbatim, so a JSON number can
have 4,301 digits or be ``NaN``. Text that is not valid UTF-8 (lone surrogates written raw) is
encoded with ``surrogatepass``, which is how such bytes reach a parser in the wild.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any


class Obj(list[tuple[str, Any]]):
    """A JSON object or XML element with children: ``(name, value)`` pairs, duplicates allowed."""


class Raw(str):
    """A value written verbatim: a JSON number token or the text of an XML element."""


def to_obj(fields: Mapping[str, Any]) -> Obj:
    """Fields as the simulator and the test kit write them, as an :class:`Obj` tree."""
    return Obj((name, _convert(value)) for name, value in fields.items())


def _convert(value: Any) -> Any:
    if isinstance(value, Mapping):
        return to_obj(value)
    if isinstance(value, list):
        return [_convert(item) for item in value]
    return value


def render_json(value: Any, *, ascii_only: bool = True) -> bytes:
    """JSON text for ``value``; with ``ascii_only`` a lone surrogate is the escape ``\\ud800``."""
    return _json(value, ascii_only).encode("utf-8", "surrogatepass")


def _json(value: Any, ascii_only: bool) -> str:
    if isinstance(value, Obj):
        members = (
            f"{json.dumps(k, ensure_ascii=ascii_only)}:{_json(v, ascii_only)}" for k, v in value
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_json(item, ascii_only) for item in value) + "]"
    if isinstance(value, Raw):
        return str(value)
    return json.dumps(value, ensure_ascii=ascii_only)


def render_xml(obj: Obj, rng: random.Random) -> bytes:
    """A ``<xml>`` document for ``obj``: text as CDATA or escaped, at the draw of ``rng``."""
    parts = ["<xml>"]
    _children(obj, rng, parts)
    parts.append("</xml>")
    return "".join(parts).encode("utf-8", "surrogatepass")


def _children(obj: Obj, rng: random.Random, parts: list[str]) -> None:
    for name, value in obj:
        for item in value if _repeated(value) else [value]:
            _element(name, item, rng, parts)


def _element(name: str, value: Any, rng: random.Random, parts: list[str]) -> None:
    if value is None:
        parts.append(f"<{name}/>")
        return
    parts.append(f"<{name}>")
    if isinstance(value, Obj):
        _children(value, rng, parts)
    elif isinstance(value, list):
        for item in value:
            _element("item", item, rng, parts)
    elif isinstance(value, Raw) or not isinstance(value, str):
        parts.append(_escape(str(value).lower() if isinstance(value, bool) else str(value)))
    elif rng.random() < 0.7:
        parts.append("<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>")
    else:
        parts.append(_escape(value))
    parts.append(f"</{name}>")


def _repeated(value: Any) -> bool:
    """Whether ``value`` stands for repeated elements: a list, but not an :class:`Obj`."""
    return isinstance(value, list) and not isinstance(value, Obj)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
