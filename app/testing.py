"""Play WeChat against the service: build pushes as WeChat does, read answers as WeChat would.

For handler authors' tests::

    from app.testing import WeChatClient

    def test_help(app):
        wechat = WeChatClient(app)
        assert wechat.text("help").reply == TextReply("Send 'order 42' to see an order.")

Pushes go through the real app: signed, encrypted in the account's mode, parsed, deduplicated
and dispatched exactly as in production; replies are verified, decrypted and parsed back. An app
that serves several accounts is played one account at a time:
``WeChatClient(app, account="shop")``.
``flask wx simulate`` uses the same :class:`PushBuilder` over real HTTP.

What handlers leave behind can be read too: :attr:`WeChatClient.sent` lists the
customer-service messages the app sent, and :meth:`WeChatClient.session` a user's session.
With ``WeChatClient(app, api=FakeAPI())`` the app's API calls go to :class:`FakeAPI`, in
process, instead of WeChat.

Slow handlers are played without sleeping: build the app with ``create_app(settings,
clock=ManualClock())``, let the stand-in for the slow call sleep on that clock, send each
attempt with :meth:`WeChatClient.post_in_background`, and move time with
:meth:`ManualClock.advance`::

    attempt = wechat.post_in_background(query, body)
    clock.until_waiting(2)            # the attempt waits, the handler "thinks"
    clock.advance(5)                  # WeChat's deadline passes
    assert attempt.result().lapsed    # so WeChat will try again
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import httpx
from flask import Flask

from config import Settings

from .extension import Accounts
from .lifecycle.clock import ManualClock as ManualClock
from .lifecycle.service import build_account
from .wechat import codec
from .wechat.codec import BodyFormat, Fields
from .wechat.envelope import Mode
from .wechat.replies import Reply, parse_reply
from .wechat.signature import sign, verify

_msg_ids = itertools.count(time.time_ns() // 1000)


@dataclass(frozen=True)
class PushResult:
    """What the service answered to one push."""

    #: HTTP status; 503 (or a closed connection) means the attempt lapsed for a retry.
    status: int
    #: The body exactly as it went out.
    body: bytes
    #: The reply's plaintext fields, verified and decrypted; None for "success" or empty.
    fields: Fields | None
    #: The typed reply; None for "success" or empty.
    reply: Reply | None
    #: The reply as the account wrote it: the body itself, or the decrypted envelope.
    plaintext: bytes = b""

    @property
    def success(self) -> bool:
        """Whether the push was answered "success" (or an empty body): nothing to show."""
        return self.status == 200 and self.fields is None

    @property
    def lapsed(self) -> bool:
        """Whether the attempt was let lapse so that WeChat retries it."""
        return self.status == 503


class PushBuilder:
    """Builds pushes and reads answers for one account, the way WeChat does; does no I/O.

    :param mode: how pushes travel; defaults to safe mode when the account has an
        EncodingAESKey, plaintext otherwise.
    :param body_format: ``BodyFormat.JSON`` to play a Mini Program set to JSON.
    :param user: the OpenID pushes come from.
    :param account: the account's original ID (``gh_…``) pushes go to.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        mode: Mode | None = None,
        body_format: BodyFormat = BodyFormat.XML,
        user: str = "oTestUser0000000000000000000",
        account: str = "gh_0123456789ab",
    ) -> None:
        self.settings = settings
        self._crypto = build_account(settings).crypto
        self.mode = mode or (Mode.SAFE if self._crypto else Mode.PLAINTEXT)
        self.body_format = body_format
        self.user = user
        self.account = account

    def complete(self, fields: Mapping[str, Any]) -> Fields:
        """Add the addressing and time WeChat puts on every push, and a MsgId to messages."""
        push: Fields = {
            "ToUserName": self.account,
            "FromUserName": self.user,
            "CreateTime": int(time.time()),
            **fields,
        }
        if push.get("MsgType") != "event":
            push.setdefault("MsgId", next(_msg_ids))
        return push

    def build(self, fields: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
        """Sign, and encrypt in the builder's mode, a push: the query and body WeChat sends."""
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**10))
        query = {
            "signature": sign(self.settings.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "openid": str(fields.get("FromUserName", self.user)),
        }
        plain = codec.render(fields, self.body_format)
        if self.mode is Mode.PLAINTEXT:
            return query, plain
        if self._crypto is None:
            raise ValueError("compatible and safe mode need WX_AES_KEY")
        encrypted = self._crypto.encrypt(plain)
        outer: Fields = {"ToUserName": fields.get("ToUserName", self.account)}
        if self.mode is Mode.COMPATIBLE:
            outer = dict(fields)
        outer["Encrypt"] = encrypted
        query["encrypt_type"] = "aes"
        query["msg_signature"] = sign(self.settings.token, timestamp, nonce, encrypted)
        return query, codec.render(outer, self.body_format)

    def read(self, status: int, body: bytes) -> PushResult:
        """Verify, decrypt and parse an answer body.

        :raises WeChatError: the answer is not something WeChat would accept.
        """
        if status != 200 or body in (b"", b"success"):
            return PushResult(status, body, None, None)
        fields = codec.parse(body, codec.detect_format(body))
        plaintext = self._open_envelope(fields) if "Encrypt" in fields else body
        if plaintext is not body:
            fields = codec.parse(plaintext, codec.detect_format(plaintext))
        return PushResult(status, body, fields, parse_reply(fields), plaintext)

    def _open_envelope(self, envelope: Fields) -> bytes:
        if self._crypto is None:
            raise ValueError("an encrypted reply needs WX_AES_KEY to read")
        encrypted = str(envelope["Encrypt"])
        verify(
            str(envelope["MsgSignature"]),
            self.settings.token,
            str(envelope["TimeStamp"]),
            str(envelope["Nonce"]),
            encrypted,
            what="MsgSignature",
        )
        return self._crypto.decrypt(encrypted)


class FakeAPI:
    """WeChat's API in process: an access_token for the asking, and "ok" to every other call,
    unless :meth:`fail_next` says otherwise. Give it to :class:`WeChatClient` as ``api``."""

    def __init__(self) -> None:
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        #: The transport the app's clients send through (both the blocking and the async).
        self.transport = httpx.MockTransport(self._answer)

    def fail_next(self, errcode: int, *, times: int = 1) -> None:
        """Answer the next ``times`` calls (other than token fetches) with ``errcode``, e.g.
        45015 (the customer-service window has passed) or 45047 (its allowance is used)."""
        with self._lock:
            self._failures.extend([errcode] * times)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        if request.url.path in ("/cgi-bin/token", "/cgi-bin/stable_token"):
            return httpx.Response(200, json={"access_token": "fake-token", "expires_in": 7200})
        with self._lock:
            errcode = self._failures.popleft() if self._failures else 0
        return httpx.Response(
            200, json={"errcode": errcode, "errmsg": "ok" if not errcode else "fake"}
        )


class WeChatClient(PushBuilder):
    """Plays WeChat against an app built by :func:`app.create_app` (or with
    :class:`app.WeChatPush`), via Flask's test client.

    :param account: the name of the account to play; by default the default account, or the
        only one the app serves.
    :param api: a :class:`FakeAPI` to send the account's API calls to instead of WeChat; the
        account needs WX_APPID and WX_APPSECRET (any values) to call the API at all.
    :raises KeyError: the app serves no such account.
    """

    def __init__(
        self, app: Flask, *, account: str | None = None, api: FakeAPI | None = None, **options: Any
    ) -> None:
        accounts: Accounts = app.extensions["wechat"]
        service = accounts.service(account)
        super().__init__(service.settings, **options)
        self._app = app
        #: Where the account answers, the app's URL prefix included.
        self.path = accounts.paths[service.settings.name]
        self._service = service
        self._sent: list[dict[str, Any]] = []
        self._sent_lock = threading.Lock()
        clients = service.contexts.clients
        if api is not None:
            if clients.api is None:
                raise ValueError("the account has no WX_APPSECRET, so it calls no API to fake")
            clients.send_to(api.transport)
        clients.watch(self._saw_request)

    @property
    def sent(self) -> list[dict[str, Any]]:
        """The customer-service messages the account has sent since this client was made,
        oldest first, as their JSON bodies: ``{"touser": …, "msgtype": "text", "text": {…}}``.

        Late replies are sent in the background: wait for them before you look.
        """
        with self._sent_lock:
            return list(self._sent)

    def session(self, user: str | None = None) -> dict[str, Any]:
        """The session of ``user`` (default: this client's user) as stored."""
        return self._service.contexts.sessions.peek(user or self.user)

    def _saw_request(self, method: str, path: str, body: Any) -> None:
        if path.endswith("/cgi-bin/message/custom/send") and isinstance(body, dict):
            with self._sent_lock:
                self._sent.append(json.loads(json.dumps(body)))

    def text(self, content: str, **fields: Any) -> PushResult:
        """Send a text message."""
        return self.send({"MsgType": "text", "Content": content, **fields})

    def image(self, media_id: str, **fields: Any) -> PushResult:
        """Send an image message."""
        pic_url = "http://mmbiz.qpic.cn/test.jpg"
        return self.send({"MsgType": "image", "PicUrl": pic_url, "MediaId": media_id, **fields})

    def voice(self, media_id: str, recognition: str = "", **fields: Any) -> PushResult:
        """Send a voice message, with speech recognition's text if given."""
        voice = {"MediaId": media_id, "Format": "amr", "Recognition": recognition}
        return self.send({"MsgType": "voice", **voice, **fields})

    def message(self, msg_type: str, **fields: Any) -> PushResult:
        """Send a user message of any type."""
        return self.send({"MsgType": msg_type, **fields})

    def event(self, event: str, key: str = "", **fields: Any) -> PushResult:
        """Send an event, e.g. ``event("CLICK", "MENU_HELP")``."""
        return self.send({"MsgType": "event", "Event": event, "EventKey": key, **fields})

    def subscribe(self, scene: str | None = None) -> PushResult:
        """Send a follow, through a parametric QR code when ``scene`` is given."""
        if scene is None:
            return self.event("subscribe")
        return self.event("subscribe", f"qrscene_{scene}", Ticket="gQTestTicket")

    def send(self, fields: Mapping[str, Any], *, attempts: int = 1) -> PushResult:
        """Send one push; ``attempts`` > 1 repeats it the way WeChat retries (same body).

        :return: the answer to the last attempt.
        """
        query, body = self.build(self.complete(fields))
        result = self.post(query, body)
        for _ in range(attempts - 1):
            result = self.post(query, body)
        return result

    def post_in_background(self, query: Mapping[str, str], body: bytes) -> Future[PushResult]:
        """POST a built push from a thread of its own; the future holds what :meth:`post`
        returns. For an attempt that waits on a :class:`ManualClock`, which this thread then
        advances."""
        pending: Future[PushResult] = Future()

        def attempt() -> None:
            try:
                pending.set_result(self.post(query, body))
            except BaseException as e:  # handed to whoever reads the future
                pending.set_exception(e)

        threading.Thread(target=attempt, name="wx-test-attempt", daemon=True).start()
        return pending

    def post(self, query: Mapping[str, str], body: bytes) -> PushResult:
        """POST a built push to the app and read the answer the way WeChat would."""
        client = self._app.test_client()
        response = client.post(self.path, query_string=dict(query), data=body)
        return self.read(response.status_code, response.get_data())
