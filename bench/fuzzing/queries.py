"""Family (b): hostile query strings and headers around valid pushes, and hostile handshakes.

The query carries the signatures, so most mutations here are signed again afterwards (a nonce
of ten thousand characters, a timestamp of 4,301 digits, a non-ASCII nonce: each correctly
signed) to reach the checks behind the signature; the rest are left unsigned, as an attacker
without the Token would send them. Parameters are dropped, repeated (with the valid value first
or last), percent-encoded badly or replaced by bare names; ``encrypt_type`` takes the spellings
a proxy or an old SDK might send. GET handshakes get hostile ``echostr`` values, and both
methods get hostile ``X-Request-Start`` and ``Content-Type`` headers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from app.wechat.codec import BodyFormat
from app.wechat.envelope import Mode

from .mutations import valid_push
from .tree import render_json, render_xml
from .values import random_text
from .wire import Carrier, Query, Request, Wire, encode_query, sign

_NAMES = ["signature", "timestamp", "nonce", "msg_signature", "encrypt_type", "openid", "echostr"]
_ENCRYPT_TYPES = ["AES", "Aes", "aes ", " aes", "", "raw", "aes\x00", "a\u00e9s", "aes,aes"]
_JUNK = ["", "=", "==x", "a=b=c", ";", "%", "%zz", "%ff", "%00", "&", "signature", "nonce="]


def _timestamps(rng: random.Random) -> list[str]:
    now = int(time.time())
    return [
        "-1",
        "0",
        "1.5",
        "1e9",
        f" {now}",
        f"+{now}",
        "0x10",
        "9" * 4301,
        "9" * 12,
        "9" * 13,
        "\uff11\uff12\uff13",
        str(now - 301),
        str(now + 301),
        str(now - 300),
        f"{now}\x00",
        random_text(rng, 5),
    ]


def _hostile_value(rng: random.Random) -> str:
    return rng.choice(
        [
            "x" * rng.choice([1000, 10000]),
            random_text(rng, rng.randint(1, 12)),
            "\u968f\u673a\u00e9",
            "\x00",
            "a b+c",
            "%ff",
        ]
    )


def _resign(query: Query, token: str, encrypted: str | None) -> Query:
    """Sign the query again over its (first) timestamp and nonce, as WeChat would have."""
    first = {name: value for name, value in reversed(query) if value is not None}
    timestamp, nonce = first.get("timestamp", ""), first.get("nonce", "")
    signed: Query = []
    for name, value in query:
        if name == "signature":
            value = sign(token, timestamp, nonce)
        elif name == "msg_signature" and encrypted is not None:
            value = sign(token, timestamp, nonce, encrypted)
        signed.append((name, value))
    return signed


#: A change to a query, made in place when the case is carried.
Change = Callable[[Query], None]


def _change(rng: random.Random) -> tuple[str, Change, bool]:
    """Draw one change: what it is, the change, and whether to sign the query again after it."""
    roll = rng.randrange(8)
    if roll == 0:
        name = rng.choice(_NAMES[:6])
        return f"-{name}", lambda q: _drop(q, name), True
    if roll == 1:
        name, bad, first = rng.choice(_NAMES[:6]), _hostile_value(rng), rng.random() < 0.5
        label = f"dup {name} ({'bad first' if first else 'bad last'})"
        return label, lambda q: _duplicate(q, name, bad, first), rng.random() < 0.5
    if roll == 2:
        name, value = rng.choice(["nonce", "openid", "signature"]), _hostile_value(rng)
        return f"{name}=hostile", lambda q: _set(q, name, value), name != "signature"
    if roll == 3:
        if rng.random() < 0.2:
            return "-encrypt_type", lambda q: _drop(q, "encrypt_type"), False
        value = rng.choice(_ENCRYPT_TYPES)
        return f"encrypt_type={value!a}", lambda q: _set(q, "encrypt_type", value), False
    if roll == 4:
        value = rng.choice(_timestamps(rng))
        return f"timestamp={value[:12]!a}", lambda q: _set(q, "timestamp", value), True
    if roll == 5:
        name = rng.choice(["signature", "msg_signature"])
        return f"{name} uppercase", lambda q: _upper(q, name), False
    if roll == 6:
        junk, at = rng.choice(_JUNK), rng.random()
        return f"junk {junk!a}", lambda q: q.insert(int(at * (len(q) + 1)), (junk, None)), False
    name = rng.choice(_NAMES) + rng.choice(["", "[]", " ", "\u00e9"])
    value = _hostile_value(rng)
    return f"+{name!a}", lambda q: q.append((name, value)), False


def _apply(
    changes: list[tuple[str, Change, bool]], query: Query, token: str, encrypted: str | None
) -> Query:
    for _, change, resign in changes:
        change(query)
        if resign:
            query = _resign(query, token, encrypted)
    return query


def _drop(query: Query, name: str) -> None:
    query[:] = [pair for pair in query if pair[0] != name]


def _duplicate(query: Query, name: str, bad: str, first: bool) -> None:
    index = next((i for i, (n, _) in enumerate(query) if n == name), len(query))
    query.insert(index if first else index + 1, (name, bad))


def _upper(query: Query, name: str) -> None:
    for index, (existing, value) in enumerate(query):
        if existing == name and value is not None:
            query[index] = (name, value.upper())


def _set(query: Query, name: str, value: str) -> None:
    for index, (existing, _) in enumerate(query):
        if existing == name:
            query[index] = (name, value)
            return
    query.append((name, value))


def _headers(rng: random.Random) -> tuple[tuple[str, str], ...]:
    if rng.random() < 0.6:
        return ()
    now_ms = int(time.time() * 1000)
    start = rng.choice(
        ["t=abc", "t=nan", "t=inf", "t=1e309", "t=-1", "t=" + "9" * 4301, f"t={now_ms}", "t="]
    )
    content_type = rng.choice(
        [
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin1",
            "text/xml; charset=utf-16",
        ]
    )
    return (("X-Request-Start", start), ("Content-Type", content_type))


def query_case(
    rng: random.Random, mode: Mode, body_format: BodyFormat, wire: Wire
) -> tuple[str, bytes, Carrier]:
    """A case with a hostile query or headers: what it is, its message, how to carry it."""
    headers = _headers(rng)
    if rng.random() < 0.15:
        return _handshake_case(rng, wire, headers)
    push = valid_push(rng, rng.choice(["text", "CLICK", "subscribe"]), body_format)
    message = render_json(push) if body_format is BodyFormat.JSON else render_xml(push, rng)
    changes = [_change(rng) for _ in range(rng.choice([1, 1, 2, 3]))]

    def carry(m: bytes) -> Request:
        encrypted = None if mode is Mode.PLAINTEXT else wire.encrypt(m)
        query, body = wire.push(m, mode, body_format, rng, encrypted=encrypted)
        query = _apply(changes, query, wire.token, encrypted)
        return Request("POST", encode_query(query), body, headers)

    return "; ".join(label for label, _, _ in changes), message, carry


def _handshake_case(
    rng: random.Random, wire: Wire, headers: tuple[tuple[str, str], ...]
) -> tuple[str, bytes, Carrier]:
    echostr = rng.choice(["4375120948345356249", "", _hostile_value(rng)])
    changes = [_change(rng) for _ in range(rng.choice([0, 0, 1, 2]))]

    def carry(m: bytes) -> Request:
        query = wire.signed_query(rng)
        query.append(("echostr", m.decode("utf-8", "surrogatepass")))
        query = _apply(changes, query, wire.token, None)
        return Request("GET", encode_query(query), b"", headers)

    label = "; ".join([f"handshake echostr={echostr[:12]!a}"] + [c[0] for c in changes])
    return label, echostr.encode("utf-8", "surrogatepass"), carry
