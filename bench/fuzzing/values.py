"""Hostile values for one field: numbers that are not, text that should not be, shapes that differ.

Each draw returns a short label with the value, so a case can say what it did ("MsgId=digits4301")
and a failure report can be read without decoding the input first.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import Any

from .tree import Obj, Raw

Draw = tuple[str, Any]

#: The MsgId of a Mini Program customer-service push seen in the wild: not a number.
HEX_MSG_ID = "49d72d67b16d115e7935ac386f2f0fa3_1555684067"

#: Number-like text: what ``int()`` and ``float()`` accept, refuse, or take too long over.
_NUMBER_TEXT = [
    ("zero", "0"),
    ("negative", "-1"),
    ("int64min-1", "-9223372036854775809"),
    ("uint64max+1", "18446744073709551616"),
    ("2^53+1", "9007199254740993"),
    ("exp", "1e5"),
    ("float", "1.5"),
    ("hex", "0x1F"),
    ("padded", " 42 "),
    ("plus", "+42"),
    ("underscore", "1_000"),
    ("fullwidth", "\uff11\uff12"),
    ("arabic-indic", "\u0664\u0662"),
    ("nan", "NaN"),
    ("inf", "-inf"),
    ("leading-zeros", "000123"),
    ("alpha", "abc"),
    ("empty", ""),
    ("newline", "12\n"),
    ("hex-msgid", HEX_MSG_ID),
]

#: Text that tends to break encoders, escapers, loggers and hashers.
_TEXT = [
    ("empty", ""),
    ("space", " "),
    ("nul", "\x00"),
    ("nul-inside", "a\x00b"),
    ("controls", "\x01\x02\x08\x0b\x0c\x1b\x1f\x7f"),
    ("surrogate", "\ud800"),
    ("low-surrogate", "\udfff"),
    ("half-pair", "x\ud83d"),
    ("emoji", "\U0001f600"),
    ("cjk", "\u4f60\u597d\uff0c\u4e16\u754c"),
    ("rtl", "\u202eabc"),
    ("combining", "e\u0301\u0301\u0301"),
    ("nonchars", "\ufffe\uffff"),
    ("bom", "\ufeff"),
    ("cdata-end", "]]>"),
    ("cdata-start", "<![CDATA["),
    ("markup", "<xml><a>&amp;</a></xml>"),
    ("doctype", '<!DOCTYPE xml [<!ENTITY a "b">]>'),
    ("entity", "&lt;&#0;&#x1F600;&undefined;"),
    ("format", "%s%n%x{0}{}"),
    ("crlf", "a\r\nb\rc"),
    ("backslash", "\\u0000\\"),
    ("qrscene", "qrscene_"),
    ("qrscene-surrogate", "qrscene_\ud800"),
    ("url", "javascript:alert(1)//https://mp.weixin.qq.com/s?a=1&b=2"),
    ("hex-msgid", HEX_MSG_ID),
    ("astral", "\U00010000\U0010ffff"),
]


def number_text(rng: random.Random) -> Draw:
    """Text that looks like a number, or nearly, including the 4,300-digit limit of ``int()``."""
    if rng.random() < 0.15:
        digits = rng.choice([4300, 4301, 5000, 20000])
        return f"digits{digits}", rng.choice(["", "-"]) + "1" + "0" * (digits - 1)
    return rng.choice(_NUMBER_TEXT)


def json_number(rng: random.Random) -> Draw:
    """A JSON value where a number is expected: huge, fractional, not finite, or not a number."""
    choices: list[Draw] = [
        ("huge", 10**30),
        ("negative", -1),
        ("int64max+1", 2**63),
        ("float", 1.5),
        ("neg-zero", -0.0),
        ("exp-float", Raw("1e400")),
        ("nan", Raw("NaN")),
        ("infinity", Raw("-Infinity")),
        ("true", True),
        ("false", False),
        ("null", None),
        ("raw-digits4301", Raw("9" * 4301)),
        ("string", "1620973045"),
    ]
    return rng.choice(choices)


def text(rng: random.Random) -> Draw:
    """Hostile text: control characters, surrogates, markup, lengths up to tens of kilobytes."""
    roll = rng.random()
    if roll < 0.08:
        size = rng.choice([1000, 10000, 60000])
        return f"long{size}", rng.choice("a\u4e2d\U0001f600<") * size
    if roll < 0.25:
        return "random", random_text(rng, rng.randint(1, 40))
    return rng.choice(_TEXT)


def random_text(rng: random.Random, size: int) -> str:
    """Code points from every plane, surrogates and non-characters included."""
    pools: list[Callable[[], str]] = [
        lambda: rng.choice(string.printable),
        lambda: chr(rng.randrange(0x20)),
        lambda: chr(rng.randrange(0x80, 0x800)),
        lambda: chr(rng.randrange(0x800, 0x10000)),
        lambda: chr(rng.randrange(0x10000, 0x110000)),
        lambda: chr(rng.randrange(0xD800, 0xE000)),
    ]
    return "".join(rng.choice(pools)() for _ in range(size))


def shape(rng: random.Random, depth: int = 0) -> Draw:
    """A value of the wrong shape: a nested element, a list, or an empty one."""
    roll = rng.random()
    if roll < 0.35:
        children = Obj(
            (rng.choice(["A", "item", "Content", "MsgId"]), "1") for _ in range(rng.randint(0, 3))
        )
        return "nested", children
    if roll < 0.6:
        return "list", [rng.choice(["1", "x", ""]) for _ in range(rng.randint(0, 3))]
    if roll < 0.75 and depth < 4:
        label, inner = shape(rng, depth + 1)
        return f"deep-{label}", Obj([("A", inner)])
    if roll < 0.85:
        return "list-of-objects", [Obj([("A", "1")]), Obj([("B", [])])]
    if roll < 0.93:
        return "empty-nested", Obj()
    return "null", None


def any_value(rng: random.Random, *, json: bool) -> Draw:
    """One hostile value of any kind; JSON-only kinds when the push is JSON."""
    roll = rng.random()
    if roll < 0.3:
        return number_text(rng)
    if roll < 0.65:
        return text(rng)
    if roll < 0.85 or not json:
        return shape(rng)
    return json_number(rng)
