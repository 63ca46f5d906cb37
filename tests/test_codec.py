"""codec.py: hardened XML and JSON parsing, CDATA, rendering; exact fields and exact bytes."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from app.wechat import codec
from app.wechat.codec import BodyFormat, cdata, detect_format, parse_json, parse_xml
from app.wechat.errors import MalformedBody
from tests.peer import as_xml_fields, load_example, text_fields, xml_body

SAFE_XML = load_example("safe_push_xml")
SAFE_JSON = load_example("safe_push_json")
REPLY_XML = load_example("encrypted_reply_xml")
MP_PUSH = load_example("mp_safe_push_json")
MP_REPLY = load_example("mp_encrypted_reply_json")
OA_COMPAT = load_example("oa_compatible_push_xml")

DOCTYPE_REFUSED = "XML declares a DOCTYPE or ENTITY; WeChat never does, refused"
NOT_WELL_FORMED = "XML is not well formed at line "
#: A hostile body must be refused long before it could expand; generous for slow CI.
FAST = 1.0


def refused(body: bytes) -> MalformedBody:
    """Parse ``body``, expect MalformedBody quickly, and return it."""
    start = time.perf_counter()
    with pytest.raises(MalformedBody) as info:
        parse_xml(body)
    assert time.perf_counter() - start < FAST
    err = info.value
    assert (err.status, err.errcode) == (400, -40002)
    return err


# -- detect_format -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<xml></xml>", BodyFormat.XML),
        (b" \r\n\t<xml/>", BodyFormat.XML),
        (b'{"a":1}', BodyFormat.JSON),
        (b'\n  {"a":1}', BodyFormat.JSON),
    ],
)
def test_detect_format(body: bytes, expected: BodyFormat) -> None:
    assert detect_format(body) is expected


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"success", b"[1]", b'"text"', "<xml/>".encode("utf-16"), b"\xef\xbb\xbf<xml/>"],
    ids=["empty", "blank", "success", "array", "string", "utf-16-bom", "utf-8-bom"],
)
def test_detect_format_refuses_anything_else(body: bytes) -> None:
    with pytest.raises(MalformedBody) as info:
        detect_format(body)
    assert info.value.message == (
        "body is neither XML (starts with '<') nor a JSON object (starts with '{')"
    )


# -- parse_xml: real pushes --------------------------------------------------------------------


def test_worked_example_message() -> None:
    assert parse_xml(SAFE_XML["message"].encode()) == SAFE_XML["fields"]


def test_official_oa_message_with_newlines() -> None:
    assert parse_xml(OA_COMPAT["message"].encode()) == OA_COMPAT["fields"]


def test_msg_id_beyond_2_53_stays_exact_text() -> None:
    fields = parse_xml(b"<xml><MsgId>6054768590064713728</MsgId></xml>")
    assert fields == {"MsgId": "6054768590064713728"}


def test_nested_elements_become_mappings() -> None:
    body = (
        b"<xml><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[scancode_push]]></Event>"
        b"<ScanCodeInfo><ScanType><![CDATA[qrcode]]></ScanType>"
        b"<ScanResult><![CDATA[1]]></ScanResult></ScanCodeInfo></xml>"
    )
    assert parse_xml(body) == {
        "MsgType": "event",
        "Event": "scancode_push",
        "ScanCodeInfo": {"ScanType": "qrcode", "ScanResult": "1"},
    }


def test_repeated_children_become_lists() -> None:
    body = (
        b"<xml><SendPicsInfo><Count>3</Count><PicList>"
        b"<item><PicMd5Sum><![CDATA[a]]></PicMd5Sum></item>"
        b"<item><PicMd5Sum><![CDATA[b]]></PicMd5Sum></item>"
        b"<item><PicMd5Sum><![CDATA[c]]></PicMd5Sum></item>"
        b"</PicList></SendPicsInfo></xml>"
    )
    assert parse_xml(body) == {
        "SendPicsInfo": {
            "Count": "3",
            "PicList": {"item": [{"PicMd5Sum": "a"}, {"PicMd5Sum": "b"}, {"PicMd5Sum": "c"}]},
        }
    }


def test_repeated_subscribe_list_and_single_entry() -> None:
    entry = (
        "<List><TemplateId><![CDATA[T{0}]]></TemplateId>"
        "<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>"
        "<PopupScene>2</PopupScene></List>"
    )
    one = f"<xml><SubscribeMsgPopupEvent>{entry.format(1)}</SubscribeMsgPopupEvent></xml>"
    two = (
        f"<xml><SubscribeMsgPopupEvent>{entry.format(1)}{entry.format(2)}"
        "</SubscribeMsgPopupEvent></xml>"
    )
    first = {"TemplateId": "T1", "SubscribeStatusString": "accept", "PopupScene": "2"}
    second = {**first, "TemplateId": "T2"}
    assert parse_xml(one.encode()) == {"SubscribeMsgPopupEvent": {"List": first}}
    assert parse_xml(two.encode()) == {"SubscribeMsgPopupEvent": {"List": [first, second]}}


def test_repeated_leaves_become_lists() -> None:
    assert parse_xml(b"<xml><a>1</a><b>x</b><a>2</a><a>3</a></xml>") == {
        "a": ["1", "2", "3"],
        "b": "x",
    }


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b"<xml/>", {}),
        (b"<xml></xml>", {}),
        (b"<xml>  </xml>", {}),
        (b"<xml><a/></xml>", {"a": ""}),
        (b"<xml><a><![CDATA[]]></a></xml>", {"a": ""}),
        (b"<xml><a>a &amp; b &lt; &#20320;&#x597D;</a></xml>", {"a": "a & b < 你好"}),
        (b"<xml><!-- note --><a>1<!-- inside --></a><?pi x?></xml>", {"a": "1"}),
        (b'<?xml version="1.0" encoding="UTF-8"?><xml><a>1</a></xml>', {"a": "1"}),
        ("<xml><Content>你好</Content></xml>".encode(), {"Content": "你好"}),
    ],
    ids=[
        "empty",
        "open-close",
        "blank",
        "empty-child",
        "empty-cdata",
        "char-refs",
        "comments-pis",
        "declaration",
        "utf-8",
    ],
)
def test_small_documents(body: bytes, fields: dict[str, Any]) -> None:
    assert parse_xml(body) == fields


# -- parse_xml: flat bodies are read without lxml, with lxml's result ---------------------------

#: Pieces that an XML parser interprets, or that look like markup, for mutating flat bodies.
PIECES = [
    *("<xml>", "</xml>", "<a>", "</a>", "<B.c-1>", "</B.c-1>", "<_>", "</_>", "<a/>", '<a x="1">'),
    *("<:a>", "<a:b>", "</a:b>", "<1a>", "< a>", "</a >", "<!--c-->", "<?pi x?>", "<!DOCTYPE x>"),
    *("<![CDATA[", "]]>", "]", "]]", "]]]>", ">", "<", "&", "&amp;", "&#65;", "&#13;", "&foo;"),
    *("\r", "\r\n", "\n", " ", "\t", "\f", "\v", "\x00", "\x1f", "\x7f", "\x85", "\u2028"),
    *("\ufeff", "\ufdd0", "\ufffd", "\ufffe", "\uffff", "\U0001f600", "x", "你好", "0"),
]
#: Bytes that are not UTF-8: invalid, a surrogate, overlong, cut short.
BAD_BYTES = [b"\xff", b"\xed\xa0\x80", b"\xc0\x80", b"\xe4\xbd"]


def random_flat_body(rng: random.Random) -> bytes:
    """A flat body of leaves, some CDATA and some plain, then up to three mutations."""
    names = ["ToUserName", "Encrypt", "a", "a", "B.c-1", "_"]
    leaves = []
    for _ in range(rng.randrange(4)):
        name = rng.choice(names)
        value = "".join(rng.choices(PIECES[-12:], k=rng.randrange(4)))
        leaf = f"<![CDATA[{value}]]>" if rng.random() < 0.5 else value
        space = rng.choice(["", " ", "\n"])
        leaves.append(f"{space}<{name}>{leaf}</{name}>")
    body = ("<xml>" + "".join(leaves) + rng.choice(["", "\n", " \t"]) + "</xml>").encode()
    for _ in range(rng.randrange(4)):
        at = rng.randrange(len(body) + 1)
        if rng.random() < 0.2:
            body = body[:at] + body[at + rng.randrange(1, 4) :]
        else:
            piece = rng.choice(BAD_BYTES) if rng.random() < 0.1 else rng.choice(PIECES).encode()
            body = body[:at] + piece + body[at:]
    return body


@pytest.mark.parametrize(
    "body",
    [
        SAFE_XML["message"].encode(),
        OA_COMPAT["body"].encode(),
        OA_COMPAT["message"].encode(),
        xml_body(text_fields("你好 ]] ] > <![CDATA[ \n\t &amp; \U0001f600")),
        b"<xml><a>1</a>\n<b>x</b> <a>2</a><a></a><a><![CDATA[]]></a></xml>\n",
    ],
    ids=["safe-message", "oa-envelope", "oa-message", "text", "repeated"],
)
def test_wechat_bodies_are_read_without_lxml(body: bytes) -> None:
    fields = codec._parse_flat(body)
    assert fields is not None
    assert fields == codec._parse_tree(body)


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><a>1\r\n2</a></xml>",
        b"<xml><a><![CDATA[1\r2]]></a></xml>",
        b"<xml><a><![CDATA[x]]>y]]></a></xml>",
        b"<xml><a><![CDATA[x]]><![CDATA[y]]></a></xml>",
        b"<xml><a>&#65;</a></xml>",
        b"<xml><a>x]y</a></xml>",
        b"<xml><a><b>1</b></a></xml>",
        b"<xml><a>\x00</a></xml>",
        "<xml><a>\ufffe</a></xml>".encode(),
        b"<xml><a>\xed\xa0\x80</a></xml>",
        b'<?xml version="1.0"?><xml><a>1</a></xml>',
        b"<xml><a>1</a></xml><xml/>",
        b"<xml><a>" + b"x" * codec._FLAT_LIMIT + b"</a></xml>",
    ],
    ids=[
        "crlf",
        "cr-in-cdata",
        "text-after-cdata",
        "two-cdata",
        "char-ref",
        "bracket",
        "nested",
        "nul",
        "non-character",
        "surrogate",
        "declaration",
        "two-roots",
        "over-limit",
    ],
)
def test_bodies_that_need_a_parser_go_to_lxml(body: bytes) -> None:
    assert codec._parse_flat(body) is None


def test_flat_reading_agrees_with_lxml_on_mutated_bodies() -> None:
    rng = random.Random(20261202)
    read_flat = 0
    for _ in range(20_000):
        body = random_flat_body(rng)
        fields = codec._parse_flat(body)
        if fields is not None:
            read_flat += 1
            assert fields == codec._parse_tree(body), body
    assert read_flat > 3000


# -- parse_xml: hostile input ------------------------------------------------------------------

BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]><xml><Content>&lol9;</Content></xml>"
)


def test_billion_laughs_is_refused_before_expansion() -> None:
    assert b"&lol8;&lol8;" in BILLION_LAUGHS
    assert refused(BILLION_LAUGHS).message == DOCTYPE_REFUSED


def test_external_entity_to_etc_passwd() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<xml><Content>&xxe;</Content></xml>"
    )
    err = refused(body)
    assert err.message == DOCTYPE_REFUSED
    assert "root:" not in err.message


def test_external_entity_never_reads_the_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    body = (
        f'<!DOCTYPE xml [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'
        "<xml><Content>&xxe;</Content></xml>"
    ).encode()
    err = refused(body)
    assert "TOP-SECRET-MARKER" not in str(err)


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE xml SYSTEM "http://127.0.0.1:9/evil.dtd"><xml><a>1</a></xml>',
        b'<!DOCTYPE xml SYSTEM "file:///etc/passwd"><xml><a>1</a></xml>',
        b'<!DOCTYPE xml [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><xml/>',
        b'<!DOCTYPE xml PUBLIC "-//X//EN" "http://127.0.0.1:9/x.dtd"><xml/>',
        b"<!DOCTYPE xml><xml/>",
    ],
    ids=[
        "external-dtd-http",
        "external-dtd-file",
        "parameter-entity",
        "public-dtd",
        "bare-doctype",
    ],
)
def test_dtd_and_entity_declarations_are_refused(body: bytes) -> None:
    assert refused(body).message == DOCTYPE_REFUSED


def test_entity_declaration_inside_the_root_is_refused() -> None:
    # Refused by the pre-check today; by the parser (not well formed) if the check moves.
    assert refused(b"<xml><!ENTITY x 'y'><a>1</a></xml>").message.startswith("XML ")


def test_undefined_entity() -> None:
    err = refused(b"<xml><a>&foo;</a></xml>")
    assert err.message == "XML is not well formed at line 1, column 13 (ERR_UNDECLARED_ENTITY)"


@pytest.mark.parametrize(
    "body",
    [
        b"<root><a>1</a></root>",
        b"<XML><a>1</a></XML>",
        b'<x:xml xmlns:x="urn:x"><a/></x:xml>',
        b"<" + b"r" * 100 + b"/>",
    ],
    ids=["root", "uppercase", "namespaced", "long-name"],
)
def test_root_must_be_xml(body: bytes) -> None:
    assert refused(body).message == "XML root element is not <xml>"


def test_a_syntax_error_says_where_never_what() -> None:
    # lxml's own message quotes the body near the fault: decrypted content, or a forged line.
    body = b"<xml><Content>oSecretOpenId\nforged</Contnt></xml>"
    message = refused(body).message
    assert message == "XML is not well formed at line 2, column 15 (ERR_TAG_NAME_MISMATCH)"
    assert "oSecret" not in message and "Cont" not in message


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><a>1</a>",
        b"<xml><a>1</xml>",
        b"<xml><a>1</a></xml><xml/>",
        b"<xml><a>1</a></xml",
        b"<xml><![CDATA[",
        b"",
        b"<xml>\xff\xfe</xml>",
        b"<xml><a>\x00</a></xml>",
    ],
    ids=[
        "truncated",
        "mismatched",
        "two-roots",
        "cut-tag",
        "open-cdata",
        "empty",
        "invalid-utf8",
        "nul",
    ],
)
def test_not_well_formed(body: bytes) -> None:
    assert refused(body).message.startswith(NOT_WELL_FORMED)


@pytest.mark.parametrize("depth", [300, 100_000])
def test_huge_nesting(depth: int) -> None:
    body = b"<xml>" + b"<a>" * depth + b"</a>" * depth + b"</xml>"
    assert refused(body).message.startswith(NOT_WELL_FORMED)


def test_nesting_within_limits_parses() -> None:
    body = b"<xml>" + b"<a>" * 100 + b"1" + b"</a>" * 100 + b"</xml>"
    value: Any = parse_xml(body)
    for _ in range(99):
        value = value["a"]
    assert value == {"a": "1"}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_hostile_utf16_bypassing_the_byte_check_is_still_refused(encoding: str) -> None:
    # The DOCTYPE pre-check looks at bytes; in UTF-16 it does not see the declaration, so the
    # parser's own limits and the DTD check after parsing must catch it.
    for text in (
        BILLION_LAUGHS.decode().replace('version="1.0"', 'version="1.0" encoding="UTF-16"'),
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml '
        '[<!ENTITY xxe SYSTEM "file:///etc/passwd">]><xml><a>&xxe;</a></xml>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE xml SYSTEM "file:///etc/passwd">'
        "<xml><a>1</a></xml>",
    ):
        body = text.encode(encoding)
        assert b"<!DOCTYPE" not in body
        assert refused(body).message.startswith("XML ")


@pytest.mark.parametrize(
    "body",
    [
        "<xml><Content>你好</Content></xml>".encode("utf-16"),
        '<?xml version="1.0" encoding="UTF-16"?><xml><a>1</a></xml>'.encode("utf-16-le"),
        '<?xml version="1.0" encoding="GBK"?><xml><a>你好</a></xml>'.encode("gbk"),
    ],
    ids=["utf-16-bom", "utf-16le-declared", "gbk-declared"],
)
def test_non_utf8_xml_is_refused(body: bytes) -> None:
    refused(body)


@pytest.mark.parametrize(
    "content",
    ["<!DOCTYPE html><html></html>", "what does <!ENTITY x 'y'> do?", "<!DOCTYPE"],
    ids=["html", "entity", "bare"],
)
def test_user_text_mentioning_doctype_is_a_normal_message(content: str) -> None:
    body = xml_body(text_fields(content))
    assert parse_xml(body) == as_xml_fields(text_fields(content))


# -- parse_json --------------------------------------------------------------------------------


def test_worked_example_json_message() -> None:
    fields = parse_json(SAFE_JSON["message"].encode())
    assert fields == SAFE_JSON["fields"]
    assert type(fields["MsgId"]) is int and type(fields["CreateTime"]) is int


def test_official_mp_debug_push() -> None:
    assert parse_json(MP_PUSH["message"].encode()) == MP_PUSH["fields"]


@pytest.mark.parametrize("number", [6054768590064713728, 2**53 + 1, 2**64 + 1, 10**40], ids=str)
def test_big_integers_stay_exact_ints(number: int) -> None:
    fields = parse_json(b'{"MsgId":%d}' % number)
    assert type(fields["MsgId"]) is int
    assert fields["MsgId"] == number


def test_json_quirks_are_kept_as_sent() -> None:
    body = b'{"CreateTime":"1620973045","List":{"TemplateId":"T"},"Content":"\\u4f60\\u597d"}'
    assert parse_json(body) == {
        "CreateTime": "1620973045",
        "List": {"TemplateId": "T"},
        "Content": "你好",
    }


def test_invalid_json_message() -> None:
    with pytest.raises(MalformedBody) as info:
        parse_json(b"{")
    err = info.value
    assert (err.status, err.errcode) == (400, -40002)
    assert err.message == (
        "JSON is not valid: Expecting property name enclosed in double quotes at line 1, column 2"
    )
    assert isinstance(err.__cause__, ValueError)


@pytest.mark.parametrize(
    "body",
    [b"", b'{"a":}', b"{'a':1}", b'{"a":1,}', b'{"a":"\xff"}', b'{"a":1} x', b"\x00"],
    ids=["empty", "no-value", "single-quotes", "trailing-comma", "invalid-utf8", "trailing", "nul"],
)
def test_invalid_json(body: bytes) -> None:
    with pytest.raises(MalformedBody) as info:
        parse_json(body)
    assert info.value.message.startswith("JSON is not valid: ")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"[]", "list"),
        (b'"x"', "str"),
        (b"1", "int"),
        (b"1.5", "float"),
        (b"null", "NoneType"),
        (b"true", "bool"),
    ],
)
def test_json_must_be_an_object(body: bytes, kind: str) -> None:
    with pytest.raises(MalformedBody) as info:
        parse_json(body)
    assert info.value.message == f"JSON body is a {kind}, expected an object"


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"a":' * 100_000, b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"],
    ids=["arrays", "objects", "inside-object"],
)
def test_deeply_nested_json_is_refused_fast(body: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(MalformedBody) as info:
        parse_json(body)
    assert time.perf_counter() - start < FAST
    assert info.value.message == "JSON is not valid: nested too deep"
    assert isinstance(info.value.__cause__, RecursionError)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le"])
def test_non_utf8_json_is_refused(encoding: str) -> None:
    body = '{"Content":"你好"}'.encode(encoding)
    with pytest.raises(MalformedBody):
        parse_json(body)


def test_parse_dispatches_on_format() -> None:
    assert codec.parse(b"<xml><a>1</a></xml>", BodyFormat.XML) == {"a": "1"}
    assert codec.parse(b'{"a":1}', BodyFormat.JSON) == {"a": 1}
    with pytest.raises(MalformedBody):
        codec.parse(b'{"a":1}', BodyFormat.XML)


# -- cdata and rendering -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "<![CDATA[]]>"),
        ("hello", "<![CDATA[hello]]>"),
        ("a]]>b", "<![CDATA[a]]]]><![CDATA[>b]]>"),
        ("]]>", "<![CDATA[]]]]><![CDATA[>]]>"),
        ("]]>]]>", "<![CDATA[]]]]><![CDATA[>]]]]><![CDATA[>]]>"),
        ("<&>", "<![CDATA[<&>]]>"),
        ("a\x00b\x08c\x0b\x0c\x1fd\ufffe\uffffe\ud800f", "<![CDATA[abcdef]]>"),
        ("a\x00b\x08c\x0b\x0c\x1fd\x7f", "<![CDATA[abcd\x7f]]>"),
        ("tab\tnl\ncr\r", "<![CDATA[tab\tnl\ncr\r]]>"),
    ],
    ids=[
        "empty",
        "plain",
        "split",
        "only-terminator",
        "twice",
        "markup",
        "forbidden-chars",
        "forbidden-ascii-chars",
        "allowed-controls",
    ],
)
def test_cdata(text: str, expected: str) -> None:
    assert cdata(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "]]>",
        "]]]]>",
        "]]>]]>",
        "a]]>b]]>c",
        "]",
        "]]",
        ">",
        "]>",
        "<![CDATA[x]]>",
        "]]]>",
        "&amp; <tag> &lt;",
        "你好 🎉",
        "",
        "line\nbreak\ttab",
        "  spaces  ",
    ],
)
def test_cdata_round_trip_through_render_and_parse(text: str) -> None:
    body = codec.render_xml({"Content": text})
    assert parse_xml(body) == {"Content": text}


def test_forbidden_characters_are_dropped_not_fatal() -> None:
    body = codec.render_xml({"Content": "a\x00b\ud800c"})
    assert body == b"<xml><Content><![CDATA[abc]]></Content></xml>"
    assert parse_xml(body) == {"Content": "abc"}


def test_render_xml_reproduces_the_worked_reply() -> None:
    assert codec.render_xml(REPLY_XML["reply_fields"]) == REPLY_XML["reply"].encode()


def test_render_xml_nested_and_repeated() -> None:
    fields = {
        "ToUserName": "o1",
        "CreateTime": 1,
        "MsgType": "news",
        "ArticleCount": 2,
        "Articles": {"item": [{"Title": "A", "Url": "u1"}, {"Title": "B]]>", "Url": "u2"}]},
    }
    body = codec.render_xml(fields)
    assert body == (
        b"<xml><ToUserName><![CDATA[o1]]></ToUserName><CreateTime>1</CreateTime>"
        b"<MsgType><![CDATA[news]]></MsgType><ArticleCount>2</ArticleCount><Articles>"
        b"<item><Title><![CDATA[A]]></Title><Url><![CDATA[u1]]></Url></item>"
        b"<item><Title><![CDATA[B]]]]><![CDATA[>]]></Title><Url><![CDATA[u2]]></Url></item>"
        b"</Articles></xml>"
    )
    parsed = parse_xml(body)
    assert parsed["Articles"]["item"][1]["Title"] == "B]]>"
    assert parsed["ArticleCount"] == "2"


@pytest.mark.parametrize(
    ("value", "kind"),
    [(True, "bool"), (1.5, "float"), (None, "NoneType"), (b"x", "bytes"), ([False], "bool")],
)
def test_render_xml_refuses_other_types(value: Any, kind: str) -> None:
    with pytest.raises(TypeError) as info:
        codec.render_xml({"Field": value})
    assert str(info.value) == f"field Field is a {kind}; use str, int or dict"


def test_render_xml_takes_subclasses_and_other_mappings() -> None:
    class Text(str):
        pass

    class Count(int):
        def __str__(self) -> str:
            return "two"

    fields = {"a": Text("x\x00]]>"), "b": Count(2), "c": MappingProxyType({"d": [Text("y")]})}
    assert codec.render_xml(fields) == (
        b"<xml><a><![CDATA[x]]]]><![CDATA[>]]></a><b>two</b><c><d><![CDATA[y]]></d></c></xml>"
    )


def test_render_json_reproduces_the_mp_reply() -> None:
    assert codec.render_json(MP_REPLY["reply_fields"]) == MP_REPLY["reply"].encode()


def test_render_json_is_compact_utf8_and_round_trips() -> None:
    fields = {"Content": '你好 ]]> "q"', "MsgId": 6054768590064713728, "List": [{"a": 1}]}
    body = codec.render_json(fields)
    assert (
        body
        == ('{"Content":"你好 ]]> \\"q\\"","MsgId":6054768590064713728,"List":[{"a":1}]}').encode()
    )
    assert parse_json(body) == fields


def test_render_dispatches_on_format() -> None:
    fields = {"a": "1"}
    assert codec.render(fields, BodyFormat.XML) == b"<xml><a><![CDATA[1]]></a></xml>"
    assert codec.render(fields, BodyFormat.JSON) == b'{"a":"1"}'


# -- cost: no input may cost more than linear time -----------------------------------------


def _best_of(repeats: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeats`` runs: the least disturbed by a noisy machine."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return min(timings)


def _refuse_or_parse(body: bytes) -> None:
    try:
        parse_xml(body)
    except MalformedBody:
        pass


@pytest.mark.parametrize(
    "unit",
    [b"<?a?>", b"<!--c-->", b"<?a?> <!-- c --> ", b"<?a", b"<!--"],
    ids=["pis", "comments", "mixed", "unclosed-pi", "unclosed-comment"],
)
def test_the_prolog_scan_grows_linearly(unit: bytes) -> None:
    # The old DOCTYPE guard, a nested lazy regex, took ~17 s on 24 "<?a?>" and froze workers.
    # Four times the input may take about four times as long; the bounds leave room for a
    # noisy machine, while exponential growth is ~250x from 8 to 16 units already (that pair
    # fails fast on such code, before the large one could hang) and quadratic is 16x.
    for count, scale, bound in ((8, 2, 8), (10_000, 4, 12)):
        small = unit * count + b"<xml><a>1</a></xml>"
        large = unit * (count * scale) + b"<xml><a>1</a></xml>"
        ratio = _best_of(7, lambda body=large: _refuse_or_parse(body)) / _best_of(
            7, lambda body=small: _refuse_or_parse(body)
        )
        assert ratio < bound, f"{scale}x the units ({count}) took {ratio:.1f}x as long"


def test_many_processing_instructions_before_the_root_parse() -> None:
    assert parse_xml(b"<?a?>" * 40 + b"<xml><Encrypt>x</Encrypt></xml>") == {"Encrypt": "x"}


@pytest.mark.parametrize(
    "body",
    [b'<?a?><!-- x --> <!DOCTYPE xml [<!ENTITY a "b">]><xml/>', b"\xef\xbb\xbf<!DOCTYPE x><xml/>"],
    ids=["after-pi-and-comment", "after-bom"],
)
def test_a_doctype_after_the_prolog_parts_is_still_refused(body: bytes) -> None:
    assert refused(body).message == DOCTYPE_REFUSED


@pytest.mark.parametrize(
    "body",
    [b'{"Content":"\\ud800"}', b'{"\\udc00":1}', b'{"a":[{"b":"x\\udfff"}]}'],
    ids=["value", "key", "nested"],
)
def test_json_with_a_lone_surrogate_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedBody) as info:
        parse_json(body)
    assert info.value.message == "JSON string escapes half of a surrogate pair; it is not text"


def test_json_with_a_surrogate_pair_is_text() -> None:
    assert parse_json(b'{"Content":"\\ud83d\\ude00"}') == {"Content": "\U0001f600"}


def test_json_number_of_over_4300_digits_is_refused() -> None:
    with pytest.raises(MalformedBody) as info:
        parse_json(b'{"CreateTime":' + b"1" * 5000 + b"}")
    assert info.value.message == "JSON is not valid: a number has too many digits"


def test_lxml_is_at_least_the_release_that_fixes_cve_2026_41066() -> None:
    floor = (6, 1)
    requirements = (Path(__file__).parent.parent / "requirements.txt").read_text()
    assert "lxml>=6.1," in requirements
    assert codec.etree.LXML_VERSION[:2] >= floor
