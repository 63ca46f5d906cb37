"""Reading wire fields: how a push's values become the attributes of a message or event.

The message classes (:mod:`.messages`), the event classes (:mod:`.events`) and their bases
(:mod:`.push`) all read their fields through these functions, so a value is read the same way
whatever type it belongs to and whether the push came as XML or JSON.

Names. An attribute is :func:`snake_case` of its wire field, so PROTOCOL.md and the code can
be grepped against each other (``FromUserName`` → ``from_user_name``, ``MsgID`` → ``msg_id``,
``HQMusicUrl`` → ``hq_music_url``, ``MediaId16K`` → ``media_id16k``, ``Location_X`` →
``location_x``). Repeated children become a tuple named in the plural (``pic_md5sums``), and
the ``List`` of a subscription event becomes ``entries``.

Values. ``CreateTime``, ``MsgId`` and the other ids WeChat documents as numbers are ``int``
(JSON may send numbers or strings; Python ints stay exact above 2**53), counts and codes are
``int``, coordinates ``float``; every other value, identifiers like ``MediaId``, ``MenuId`` and
``Ticket`` included, stays the ``str`` WeChat sent. ``raw`` keeps the whole push as received, so
unknown fields and the exact wire strings survive.

Strictness. Only what every push needs (``ToUserName``, ``FromUserName``, ``CreateTime``,
``MsgType``; ``Event`` of an event) raises :class:`MalformedBody`, with a message that
describes the value and never repeats it. A message id (``MsgId``, or ``MsgID`` as job-finished
events spell it) is an integer or a string id as given, and may be missing. A type's own
field that is absent or unusable reads as empty: ``""``, ``None`` for a number, ``()`` for
repeated values, ``{}`` for nested ones. WeChat adds and drops fields over time, and a refused
push is retried and then shown to the user as an error.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import MalformedBody

_WORD_START = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
#: Integers WeChat sends are 64-bit at most (20 digits); a longer one is not an id but an attack
#: on ``int()``, which is quadratic in the digits and refuses more than 4,300 of them.
_INT = re.compile(r"[+-]?[0-9]{1,20}")
_FLOAT = re.compile(r"[+-]?([0-9]{1,40}(\.[0-9]{0,40})?|\.[0-9]{1,40})")
#: A message id WeChat sends as a string (``49d72d67b16d115e7935ac386f2f0fa3_1555684067``).
_STRING_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
#: What the identifying fields (``ToUserName``, ``FromUserName``, ``MsgType``, ``Event``) are:
#: short printable text, never control characters that could forge a log line.
_IDENTIFIER = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


@functools.lru_cache(maxsize=256)
def snake_case(wire_name: str) -> str:
    """The attribute name of a wire field.

    A word starts at a capital that follows a lowercase letter, or at the last capital of a
    run followed by a lowercase letter; digits and the letters after them stay in their word;
    an underscore on the wire stays. ``PicMd5Sum`` → ``pic_md5sum``, ``MsgID`` → ``msg_id``.
    Cached: :func:`read` asks for the same few dozen names on every push, and the regular
    expression cost more than the rest of reading a text message's own fields.
    """
    return _WORD_START.sub("_", wire_name).lower()


# -- reading wire values -----------------------------------------------------------------


def text(value: object) -> str:
    """A text value: XML gives ``str``, JSON may give a number; anything else is absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def integer(value: object) -> int | None:
    """An integer from a JSON number or a decimal string; None when absent or not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value)
    return None


def number(value: object) -> float | None:
    """A finite decimal number from JSON or a string; None when absent or not one."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
        return result if math.isfinite(result) else None
    if isinstance(value, str) and _FLOAT.fullmatch(value.strip()):
        return float(value)
    return None


def identifier(value: object) -> int | str | None:
    """A message id as WeChat sent it: an integer, or a string id kept as given; None when
    absent or not an id (free text, control characters, over 128 characters)."""
    number = integer(value)
    if number is not None:
        return number
    if isinstance(value, str) and _STRING_ID.fullmatch(value.strip()):
        return value.strip()
    return None


def mapping(value: object) -> Mapping[str, Any]:
    """A nested element; an empty mapping when absent or not nested."""
    return value if isinstance(value, Mapping) else {}


def repeated(value: object) -> list[Mapping[str, Any]]:
    """Repeated nested elements as a list: one element gives a mapping, several a list."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    return []


def read(
    source: Mapping[str, Any], convert: Callable[[object], object], *names: str
) -> dict[str, Any]:
    """Constructor arguments from the wire fields ``names``, each under its snake_case name."""
    return {snake_case(name): convert(source.get(name)) for name in names}


def required_text(fields: Mapping[str, Any], name: str) -> str:
    """The identifying text every push must carry in ``name``: 1-128 characters, none of them
    a control character.

    :raises MalformedBody: it is absent, empty, not a string, too long or has control
        characters; the message describes the value, never repeats it.
    """
    value = fields.get(name)
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise MalformedBody(
            f"push field {name} must be 1-128 printable characters, got {described(value)}"
        )
    return value


def required_int(fields: Mapping[str, Any], name: str, what: str) -> int:
    """The integer every ``what`` (``push``, ``text message``...) must carry in ``name``.

    :raises MalformedBody: it is absent or not an integer.
    """
    value = fields.get(name)
    result = integer(value)
    if result is None:
        raise MalformedBody(
            f"{what} field {name} must be an integer of up to 20 digits, got {described(value)}"
        )
    return result


def described(value: object) -> str:
    """What a refused value is, for an error message that must not repeat what was sent."""
    if value is None:
        return "nothing"
    name = type(value).__name__
    article = "an" if name[0] in "aeiou" else "a"
    if isinstance(value, (str, list, dict)):
        noun = {str: "character", list: "item", dict: "field"}[type(value)]
        return f"{article} {name} of {len(value)} {noun}{'' if len(value) == 1 else 's'}"
    return f"{article} {name}"
