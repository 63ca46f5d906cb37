"""Family (c): hostile documents and broken AES envelopes, signed and encrypted correctly.

Documents attack the codec: XXE, entity bombs, DOCTYPEs wherever a prolog allows one, runs of
processing instructions and comments (a guard that backtracks takes exponential time on them),
deep nesting, CDATA tricks, bytes that are not UTF-8, byte-order marks, other encodings, roots
that are not ``<xml>``; for JSON deep nesting, numbers past ``int()``'s 4,300-digit limit, lone
surrogates, duplicate keys and roots that are not objects. Most wrap a valid push, so that a
parser that lets them through sends them on to the message model. In plaintext mode a document
is the body; encrypted, it is the message inside ``Encrypt`` (and, in compatible mode, the body
around it too).

Envelopes (:mod:`.envelopes`) attack the crypto, in the encrypted modes: each comes with a
``msg_signature`` computed over the forged ``Encrypt``, so it is the decryption that has to
refuse it.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from app.wechat.codec import BodyFormat
from app.wechat.envelope import Mode

from .envelopes import encrypt_not_text, forged
from .mutations import valid_push
from .tree import render_json, render_xml
from .wire import Carrier, Request, Wire, post

Document = Callable[[random.Random, bytes], tuple[str, bytes]]

_XXE_FILE = b'<!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
_XXE_NET = b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
_LAUGHS = (
    b'<!DOCTYPE xml [<!ENTITY a0 "lol">'
    + b"".join(
        b'<!ENTITY a%d "%s">' % (i, b"".join(b"&a%d;" % (i - 1) for _ in range(10)))
        for i in range(1, 10)
    )
    + b"]>"
)
_QUADRATIC = b'<!DOCTYPE xml [<!ENTITY q "' + b"x" * 20000 + b'">]>'
_SIBLINGS = b"<A>1</A>" * 5000
_MANY_KEYS = b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(5000)) + b"}"


def _with_content(push: bytes, content: bytes) -> bytes:
    """A text push whose Content element holds ``content`` raw (not in CDATA)."""
    start = push.find(b"<Content>")
    end = push.find(b"</Content>")
    return push[: start + 9] + content + push[end:]


# -- XML ---------------------------------------------------------------------------------


def _doctype(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    declaration, label = rng.choice(
        [
            (_XXE_FILE, "xxe-file"),
            (_XXE_NET, "xxe-param"),
            (_LAUGHS, "billion-laughs"),
            (_QUADRATIC, "quadratic"),
            (b"<!DOCTYPE xml>", "doctype"),
            (b"<!doctype xml>", "doctype-lower"),
            (b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/x.dtd">', "doctype-system"),
        ]
    )
    before = rng.choice(
        [b"", b'<?xml version="1.0"?>', b"\xef\xbb\xbf", b"<!--c-->", b"<?pi x?>", b" \n\t"]
    )
    reference = rng.choice([b"&x;", b"&a9;", b"&q;" * 1000, b"&a0;", b""])
    return f"{label}", before + declaration + _with_content(push, reference)


def _prolog_runs(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    unit = rng.choice([b"<?a?>", b"<?a ?>", b"<!--a-->", b"<?a?><!--b-->", b"<?a?> ", b"<?a?"])
    count = rng.choice([40, 41, 200, 2000])
    tail = rng.choice([push, b"x", b"<!", b"", b"<!DOCTYPE x>" + push, b"<![CDATA[x]]>"])
    return f"prolog {unit!r}x{count}", unit * count + tail


def _declaration(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    encoding = rng.choice(["utf-8", "UTF-16", "latin1", "ebcdic-cp-us", "bogus", "utf-32", ""])
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>'.encode()
    if encoding.lower() == "utf-16" and rng.random() < 0.5:
        return "utf-16", (declaration.decode() + push.decode()).encode("utf-16")
    lead = rng.choice([b"", b" ", declaration])
    return f"declaration {encoding}", lead + declaration + push


def _nesting(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    depth = rng.choice([100, rng.randint(250, 260), 300, 3000])
    inner = b"<a>" * depth + b"x" + b"</a>" * depth
    if rng.random() < 0.5:
        return f"nest{depth}", _with_content(push, inner)
    return f"nest{depth}-bare", b"<xml>" + inner + b"</xml>"


def _cdata(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    label, content = rng.choice(
        [
            ("split", b"<![CDATA[a]]]]><![CDATA[>b]]>"),
            ("unterminated", b"<![CDATA[abc"),
            ("nested", b"<![CDATA[<![CDATA[x]]>]]>"),
            ("doctype-inside", b"<![CDATA[<!DOCTYPE xml>]]>"),
            ("empty", b"<![CDATA[]]>"),
            ("mixed", b"a<![CDATA[b]]>c<!--d-->e<?f?>g"),
            ("entities", b"&amp;&lt;&#65;&#x10FFFF;"),
            ("bad-entities", rng.choice([b"&#0;", b"&#xD800;", b"&undefined;", b"&#99999999;"])),
        ]
    )
    if rng.random() < 0.2:
        return f"cdata {label} at root", content + push
    return f"cdata {label}", _with_content(push, content)


def _bytes(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    label, raw = rng.choice(
        [
            ("invalid-utf8", b"\xff\xfe"),
            ("overlong-nul", b"\xc0\x80"),
            ("encoded-surrogate", b"\xed\xa0\x80"),
            ("truncated", b"\xe4\xbd"),
            ("nul", b"\x00"),
            ("controls", b"\x01\x1b\x7f"),
        ]
    )
    if rng.random() < 0.3:
        return f"{label} at end", push + raw
    return label, _with_content(push, raw)


def _bom(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    label, body = rng.choice(
        [
            ("utf-8 bom", b"\xef\xbb\xbf" + push),
            ("utf-8 bom twice", b"\xef\xbb\xbf\xef\xbb\xbf" + push),
            ("utf-16le", push.decode().encode("utf-16")),
            ("utf-16be", b"\xfe\xff" + push.decode().encode("utf-16-be")),
            ("utf-32", push.decode().encode("utf-32")),
            ("bom space", b"\xef\xbb\xbf \n" + push),
        ]
    )
    return label, body


def _root(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    inner = push[len(b"<xml>") : -len(b"</xml>")]
    label, body = rng.choice(
        [
            ("root foo", b"<foo>" + inner + b"</foo>"),
            ("root XML", b"<XML>" + inner + b"</XML>"),
            ("root ns", b'<x:xml xmlns:x="urn:a">' + inner + b"</x:xml>"),
            ("root default ns", b'<xml xmlns="urn:a">' + inner + b"</xml>"),
            ("root attributes", b'<xml a="1" b="&amp;">' + inner + b"</xml>"),
            ("two roots", push + push),
            ("text root", b"<xml>text only</xml>"),
            ("empty root", rng.choice([b"<xml/>", b"<xml></xml>", b"<xml> </xml>"])),
            ("child ns", push.replace(b"<Content>", b'<a:Content xmlns:a="u">', 1)),
            ("siblings", b"<xml>" + _SIBLINGS + inner + b"</xml>"),
            ("truncated", push[: len(push) // 2]),
            ("nothing", rng.choice([b"", b" ", b"<", b"<xml", b"\n\n"])),
        ]
    )
    return label, body


_XML_DOCUMENTS: list[Document] = [
    _doctype,
    _prolog_runs,
    _declaration,
    _nesting,
    _cdata,
    _bytes,
    _bom,
    _root,
]


# -- JSON --------------------------------------------------------------------------------


def _json_nesting(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    # Around 1,000 is where json's recursion limit sits: parsed, but perhaps not re-encoded.
    depth = rng.choice([100, rng.randint(950, 1000), 5000, 20000])
    if rng.random() < 0.5:
        return f"objects{depth}", b'{"a":' * depth + b"1" + b"}" * depth
    nested = b"[" * depth + b"]" * depth
    return f"arrays{depth}", push[:-1] + b',"Deep":' + nested + b"}"


def _json_numbers(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    digits = rng.choice([4300, 4301, 10000])
    number = rng.choice([b"1" + b"0" * (digits - 1), b"1e999999", b"-0", b"1.0e-400", b"NaN"])
    name = rng.choice([b"CreateTime", b"MsgId", b"Extra"])
    return f"{name.decode()}={number[:12]!r}", push[:-1] + b',"' + name + b'":' + number + b"}"


def _json_text(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    label, member = rng.choice(
        [
            ("surrogate", b'"Content":"\\ud800"'),
            ("surrogate key", b'"\\udfff":"x"'),
            ("surrogate pair split", b'"Content":"\\ud83d\\u0041"'),
            ("raw surrogate", b'"Content":"\xed\xa0\x80"'),
            ("nul", b'"Content":"\\u0000"'),
            ("raw control", b'"Content":"a\x01b"'),
            ("empty key", b'"":""'),
            ("duplicate", b'"MsgType":"event","MsgType":"text"'),
            ("invalid utf-8", b'"Content":"\xff"'),
        ]
    )
    return label, push[:-1] + b"," + member + b"}"


def _json_shapes(rng: random.Random, push: bytes) -> tuple[str, bytes]:
    label, body = rng.choice(
        [
            ("array root", b"[" + push + b"]"),
            ("string root", b'"x"'),
            ("number root", b"1"),
            ("null root", b"null"),
            ("spaced array root", b"  []"),
            ("bom", b"\xef\xbb\xbf" + push),
            ("trailing garbage", push + b"x"),
            ("trailing comma", push[:-1] + b",}"),
            ("comment", b"{/*c*/" + push[1:]),
            ("single quotes", b"{'a':1}"),
            ("empty object", b"{}"),
            ("many keys", _MANY_KEYS),
            ("truncated", push[: len(push) // 2]),
            ("nothing", rng.choice([b"", b"{", b" {"])),
        ]
    )
    return label, body


_JSON_DOCUMENTS: list[Document] = [_json_nesting, _json_numbers, _json_text, _json_shapes]


# -- cases -------------------------------------------------------------------------------


def hostile_case(
    rng: random.Random, mode: Mode, body_format: BodyFormat, wire: Wire
) -> tuple[str, bytes, Carrier]:
    """A hostile case: what it is, the message it carries, and how to carry it."""
    json = body_format is BodyFormat.JSON
    push = valid_push(rng, "text", body_format)
    rendered = render_json(push) if json else render_xml(push, random.Random(0))
    if mode is not Mode.PLAINTEXT and rng.random() < 0.3:
        return _envelope_case(rng, mode, body_format, wire, rendered)
    document = rng.choice(_JSON_DOCUMENTS if json else _XML_DOCUMENTS)
    label, message = document(rng, rendered)
    return label, message, wire.carrier(mode, body_format, rng)


def _envelope_case(
    rng: random.Random, mode: Mode, body_format: BodyFormat, wire: Wire, message: bytes
) -> tuple[str, bytes, Carrier]:
    if rng.random() < 0.2:
        label, body = encrypt_not_text(rng, body_format, wire)
        encrypted = rng.choice(["", "1", "AAAA"])
        return label, body, lambda b: post(wire.signed_query(rng, encrypted=encrypted), b)
    label, forge = forged(rng, wire)

    def carry(m: bytes) -> Request:
        return post(*wire.push(m, mode, body_format, rng, encrypted=forge(m)))

    return label, message, carry
