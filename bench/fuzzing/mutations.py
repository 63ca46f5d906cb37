"""Family (a): valid pushes of every type (PROTOCOL.md §5) with one to three fields broken.

The pushes start from :data:`app.console.simulator.SAMPLES`, which has every message and
event type, addressed and timed as WeChat does; a field is then set to a hostile value, removed,
repeated, renamed (``MsgID`` for ``MsgId``), nested, or the fields reordered. The common fields
every push needs are picked more often than the rest, since the strict checks are theirs.
"""

from __future__ import annotations

import base64
import random
import time
from typing import Any

from app.console.simulator import SAMPLES, push_fields
from app.wechat.codec import BodyFormat

from . import values
from .tree import Obj, render_json, render_xml, to_obj
from .wire import ACCOUNT

#: Every push type the simulator knows: message types and event names.
KINDS = sorted(SAMPLES)
#: The fields the service checks strictly; mutated more often than the others.
COMMON = ["ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Event", "EventKey"]
#: What ``MsgId`` is renamed to: the events' spelling, and case variants.
RENAMES = {"MsgId": ["MsgID", "msgid", "MSGID", "Msgid"], "MsgID": ["MsgId", "msgID"]}


def openid(rng: random.Random) -> str:
    """A fresh OpenID-like user, so that pushes of one run seldom share a ledger entry."""
    return "o" + base64.urlsafe_b64encode(rng.randbytes(21)).decode("ascii")[:27]


def valid_push(rng: random.Random, kind: str, body_format: BodyFormat) -> Obj:
    """A push of ``kind`` as WeChat sends it now, with JSON's quirks when in JSON."""
    sample = push_fields(kind, {})
    json = body_format is BodyFormat.JSON
    now = int(time.time())
    fields: dict[str, Any] = {
        "ToUserName": ACCOUNT,
        "FromUserName": openid(rng),
        "CreateTime": str(now) if json and rng.random() < 0.2 else now,
        **sample,
    }
    if sample["MsgType"] != "event":
        msg_id = rng.randrange(2**64)
        fields["MsgId"] = str(msg_id) if not json or rng.random() < 0.2 else msg_id
    return to_obj(fields)


def mutated_push(rng: random.Random, body_format: BodyFormat) -> tuple[str, bytes]:
    """A valid push with one to three mutations, rendered; and what was done to it."""
    kind = rng.choice(KINDS)
    push = valid_push(rng, kind, body_format)
    json = body_format is BodyFormat.JSON
    done = [_mutate(push, rng, json=json) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    label = f"{kind}: {'; '.join(done)}"
    if json:
        return label, render_json(push, ascii_only=rng.random() < 0.85)
    return label, render_xml(push, rng)


def _mutate(push: Obj, rng: random.Random, *, json: bool) -> str:
    """Apply one mutation somewhere in ``push``; return what it did."""
    parent, index = _pick(push, rng)
    roll = rng.random()
    if index is None:
        name = rng.choice(COMMON)
        label, value = values.any_value(rng, json=json)
        parent.append((name, value))
        return f"+{name}={label}"
    name, old = parent[index]
    if roll < 0.55:
        label, value = values.any_value(rng, json=json)
        parent[index] = (name, value)
        return f"{name}={label}"
    if roll < 0.68:
        del parent[index]
        return f"-{name}"
    if roll < 0.78:
        label, value = ("same", old) if rng.random() < 0.5 else values.any_value(rng, json=json)
        parent.insert(rng.randrange(len(parent) + 1), (name, value))
        return f"dup {name}={label}"
    if roll < 0.86:
        renamed = rng.choice(RENAMES.get(name, [name.lower(), name.upper()]))
        parent[index] = (renamed, old)
        return f"{name}->{renamed}"
    if roll < 0.93:
        extra = values.random_text(rng, rng.randint(1, 8)) if json else rng.choice(COMMON)
        label, value = values.any_value(rng, json=json)
        parent.insert(rng.randrange(len(parent) + 1), (extra, value))
        return f"+{extra!a}={label}"
    rng.shuffle(parent)
    return "shuffled"


def _pick(push: Obj, rng: random.Random) -> tuple[Obj, int | None]:
    """A field to mutate: a common one at times, else any field at any depth.

    :return: the object holding it and its index, or ``(push, None)`` to add a common field
        the push lacks.
    """
    if rng.random() < 0.3:
        name = rng.choice(COMMON)
        indexes = [i for i, (n, _) in enumerate(push) if n == name]
        return (push, rng.choice(indexes)) if indexes else (push, None)
    places: list[tuple[Obj, int]] = []
    _places(push, places)
    return rng.choice(places) if places else (push, None)


def _places(obj: Obj, places: list[tuple[Obj, int]]) -> None:
    for index, (_, value) in enumerate(obj):
        places.append((obj, index))
        for item in value if isinstance(value, list) and not isinstance(value, Obj) else [value]:
            if isinstance(item, Obj):
                _places(item, places)
