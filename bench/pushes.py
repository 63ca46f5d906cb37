"""The pushes the benchmarks send, built the way WeChat builds them.

:class:`app.testing.PushBuilder` (the simulator's code) signs and encrypts in safe mode with a
fresh timestamp and a MsgId of its own per push, so no push is a retry of another unless a
benchmark sends it again on purpose.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from app.testing import PushBuilder
from bench.account import AES_KEY, APPID, PATH, TOKEN
from config import Settings

SETTINGS = Settings(token=TOKEN, appid=APPID, aes_key=AES_KEY, store_url="memory://")


def builder(user: str = "oBenchUser000000000000000000") -> PushBuilder:
    """A WeChat that pushes from ``user`` in safe mode."""
    return PushBuilder(SETTINGS, user=user)


def user(n: int) -> str:
    """The OpenID of the ``n``-th user (28 characters, like a real one)."""
    return f"oBench{n:022d}"


def text_push(content: str, sender: str) -> tuple[dict[str, str], bytes]:
    """One text push from ``sender``, signed now, with a MsgId of its own."""
    wechat = builder(sender)
    return wechat.build(wechat.complete({"MsgType": "text", "Content": content}))


def raw_request(query: Mapping[str, str], body: bytes, host: str) -> bytes:
    """The push as bytes on the wire: one POST on a connection of its own, as WeChat sends it.

    ``Connection: close`` because WeChat opens a new connection per push; it also makes the
    servers compared pay the same (sync workers close every connection anyway).
    """
    target = f"{PATH}?{urllib.parse.urlencode(query)}"
    head = (
        f"POST {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/4.0\r\n"
        f"Content-Type: text/xml\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def text_requests(count: int, host: str, *, start: int = 0) -> list[bytes]:
    """``count`` distinct text pushes, each from its own user, as raw requests."""
    wechat = builder()
    requests = []
    for n in range(start, start + count):
        fields = wechat.complete({"MsgType": "text", "Content": f"你好 {n}"})
        fields["FromUserName"] = user(n)
        requests.append(raw_request(*wechat.build(fields), host))
    return requests
