"""A fake of WeChat's server API: a real HTTP server on loopback, for tests and benchmarks.

Start it as a context manager; it listens on ``127.0.0.1`` on a port the OS picks and serves
from a thread until the block ends::

    with FakeWeChat("wx1a2b3c4d5e6f7a8b", "0123456789abcdef0123456789abcdef") as fake:
        api = WeChatAPI(fake.appid, fake.secret, store, base_url=fake.url)
        api.send_text("oUser", "hi")
        assert fake.token_requests == 1
        assert fake.messages == [{"touser": "oUser", "msgtype": "text", "text": {"content": "hi"}}]

It behaves like the real API where the service depends on it (API.md):

* ``GET /cgi-bin/token?grant_type=client_credential&appid=...&secret=...`` issues a new token on
  every call; the previous one stops working ``old_token_grace`` seconds later (the real API
  allows minutes; the default 0 makes racing refreshes fail at once, so tests see them).
* ``POST /cgi-bin/stable_token`` with ``{"grant_type", "appid", "secret", "force_refresh"}``
  returns the same token until it expires or ``force_refresh`` is true, which replaces it and
  revokes the old one. Stable and classic tokens are independent, as on the real API.
* Every endpoint of :mod:`tests.fakeendpoints` (messages, templates, media, users, QR codes,
  menus) with ``?access_token=``; what each accepted is in an observation list.
* Errors: 40013 wrong AppID, 40001 wrong secret, 40002 wrong grant_type, 41001 no
  access_token, 40001 unknown or revoked token, 42001 expired token, 47001 body not a JSON
  object; any other path is an HTTP 404.
* Connections are kept alive (HTTP/1.1), as WeChat's are; :attr:`connections` counts them.

Scripting: :meth:`fail_next` answers the next calls of a path with an errcode, :meth:`drop_next`
closes the connection without an answer, :meth:`set_latency` delays answers,
:meth:`revoke_tokens` and :meth:`expire_tokens` kill every token. Every observation is read
under the fake's lock and returned as a copy, so tests may poll them while requests are in
flight.

No pytest here: benchmarks and scripts use the fake too.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakeendpoints import (
    BIZSEND_PATH,
    MEDIA_GET_PATH,
    MEDIA_UPLOAD_PATH,
    MENU_CREATE_PATH,
    MENU_DELETE_PATH,
    MENU_GET_PATH,
    MP_TYPING_PATH,
    QRCODE_PATH,
    SEND_PATH,
    SHOWQRCODE_PATH,
    SUBSCRIBE_PATH,
    TEMPLATE_PATH,
    TYPING_PATH,
    USER_BATCH_PATH,
    USER_INFO_PATH,
    VIDEO_PATH,
    Endpoints,
    Part,
    Received,
    Reply,
    json_reply,
    parse_multipart,
)

__all__ = [
    "BIZSEND_PATH",
    "MEDIA_GET_PATH",
    "MEDIA_UPLOAD_PATH",
    "MENU_CREATE_PATH",
    "MENU_DELETE_PATH",
    "MENU_GET_PATH",
    "MP_TYPING_PATH",
    "QRCODE_PATH",
    "SEND_PATH",
    "SHOWQRCODE_PATH",
    "STABLE_TOKEN_PATH",
    "SUBSCRIBE_PATH",
    "TEMPLATE_PATH",
    "TOKEN_PATH",
    "TYPING_PATH",
    "USER_BATCH_PATH",
    "USER_INFO_PATH",
    "VIDEO_PATH",
    "FakeWeChat",
    "Received",
]

TOKEN_PATH = "/cgi-bin/token"
STABLE_TOKEN_PATH = "/cgi-bin/stable_token"


class FakeWeChat(Endpoints):
    """The fake API server of one account.

    :param appid: the AppID it accepts.
    :param secret: the AppSecret it accepts.
    :param expires_in: lifetime of the tokens it issues, in seconds (also what it announces).
    :param latency: seconds every answer is delayed; see :meth:`set_latency`.
    :param old_token_grace: seconds a classic token keeps working after the next one is issued.
    """

    def __init__(
        self,
        appid: str = "wx1a2b3c4d5e6f7a8b",
        secret: str = "0123456789abcdef0123456789abcdef",
        *,
        expires_in: float = 7200,
        latency: float = 0.0,
        old_token_grace: float = 0.0,
    ) -> None:
        super().__init__()
        self.appid = appid
        self.secret = secret
        self.expires_in = expires_in
        self.old_token_grace = old_token_grace
        self._closing = threading.Event()
        self._latency: dict[str | None, float] = {None: latency}
        self._failures: dict[str, deque[tuple[int, str | None]]] = defaultdict(deque)
        #: Per path: for each call to drop, whether to carry it out first.
        self._drops: dict[str, deque[bool]] = defaultdict(deque)
        #: token -> monotonic expiry; a revoked token is absent.
        self._tokens: dict[str, float] = {}
        #: token -> monotonic time it is revoked at (a classic token's successor's grace).
        self._revoke_at: dict[str, float] = {}
        self._classic: str | None = None
        self._stable: str | None = None
        self._token_requests = 0
        self._requests: list[Received] = []
        self._sockets: set[socket.socket] = set()
        self._connections = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeWeChat:
        """Bind a free loopback port and serve from a thread; :meth:`close` undoes it."""
        if self._server is not None:
            raise RuntimeError("the fake is already running")
        self._closing.clear()
        server = _Server(self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-wechat"
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut delays and kept connections short, and wait for every handler
        thread to finish."""
        if self._server is None or self._thread is None:
            return
        self._closing.set()
        self._server.shutdown()
        with self._lock:
            kept = list(self._sockets)
        for sock in kept:  # idle kept-alive connections would hold their thread until timeout
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeWeChat:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """Base URL to give the client as ``base_url``, e.g. ``http://127.0.0.1:43117``."""
        if self._server is None:
            raise RuntimeError("the fake is not running; use it in a with block or start() it")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- scripting --------------------------------------------------------------------------

    def fail_next(
        self, path: str, errcode: int, *, times: int = 1, errmsg: str | None = None
    ) -> None:
        """Answer the next ``times`` calls of ``path`` with ``errcode`` (and do nothing else).

        Calls of a token path still count in :attr:`token_requests`.
        """
        with self._lock:
            self._failures[path].extend([(int(errcode), errmsg)] * times)

    def drop_next(self, path: str, *, times: int = 1, processed: bool = False) -> None:
        """Close the connection of the next ``times`` calls of ``path`` without answering.

        :param processed: carry the call out first (record the message, issue the token), as
            when WeChat did the work and the answer was lost on the way back.
        """
        with self._lock:
            self._drops[path].extend([processed] * times)

    def set_latency(self, seconds: float, path: str | None = None) -> None:
        """Delay answers to ``path`` (every path when None) by ``seconds``; 0 removes it."""
        with self._lock:
            self._latency[path] = seconds

    def revoke_tokens(self) -> None:
        """Make every issued token unknown (40001), as a refresh elsewhere would."""
        with self._lock:
            self._tokens.clear()
            self._revoke_at.clear()
            self._classic = self._stable = None

    def expire_tokens(self) -> None:
        """Make every issued token expired (42001)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = {token: min(expiry, now) for token, expiry in self._tokens.items()}

    # -- observations -----------------------------------------------------------------------

    @property
    def token_requests(self) -> int:
        """Calls of /cgi-bin/token and /cgi-bin/stable_token, failed ones included."""
        with self._lock:
            return self._token_requests

    @property
    def requests(self) -> list[Received]:
        """Every request received, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._lock:
            return self._connections

    def calls(self, path: str) -> list[Received]:
        """The requests of ``path``, in order."""
        return [r for r in self.requests if r.path == path]

    # -- the API ----------------------------------------------------------------------------

    def _delay(self, path: str) -> None:
        with self._lock:
            seconds = self._latency.get(path) or self._latency[None]
        if seconds > 0:
            self._closing.wait(seconds)

    def _handle(
        self, method: str, path: str, query: dict[str, str], content_type: str, raw: bytes
    ) -> Reply | None:
        """The answer to one request; None for a dropped connection."""
        body: Any = None
        upload: Part | None = None
        if content_type.startswith("multipart/form-data"):
            upload = parse_multipart(content_type, raw)
        elif method == "POST":
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        with self._lock:
            if path in (TOKEN_PATH, STABLE_TOKEN_PATH):
                self._token_requests += 1
            drops, failures = self._drops.get(path), self._failures.get(path)
            reply: Reply | None
            if drops:
                if drops.popleft():
                    self._answer(method, path, query, body, upload)
                reply = None
            elif failures:
                code, errmsg = failures.popleft()
                text = errmsg if errmsg is not None else f"scripted failure {code}"
                reply = json_reply({"errcode": code, "errmsg": text})
            else:
                reply = self._answer(method, path, query, body, upload)
            errcode = None if reply is None else reply.errcode
            self._requests.append(Received(method, path, query, body, errcode, upload))
            return reply

    def _answer(
        self, method: str, path: str, query: dict[str, str], body: Any, upload: Part | None
    ) -> Reply:
        if (method, path) == ("GET", TOKEN_PATH):
            return json_reply(self._issue(query, classic=True, force=True))
        if (method, path) == ("POST", STABLE_TOKEN_PATH):
            if not isinstance(body, dict):
                return json_reply({"errcode": 47001, "errmsg": "data format error"})
            force = body.get("force_refresh") is True
            return json_reply(self._issue(body, classic=False, force=force))
        return self._endpoint(method, path, query, body, upload)

    def _issue(self, credentials: dict[str, Any], *, classic: bool, force: bool) -> dict[str, Any]:
        if credentials.get("grant_type") != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if credentials.get("appid") != self.appid:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if credentials.get("secret") != self.secret:
            return {"errcode": 40001, "errmsg": "invalid credential, secret is wrong"}
        now = time.monotonic()
        current = self._classic if classic else self._stable
        if current is not None and not force and self._tokens.get(current, 0.0) > now:
            return {"access_token": current, "expires_in": self._remaining(current, now)}
        if current is not None:
            grace = self.old_token_grace if classic else 0.0
            self._revoke_at[current] = now + grace
        token = ("CLASSIC_" if classic else "STABLE_") + secrets.token_urlsafe(24)
        self._tokens[token] = now + self.expires_in
        if classic:
            self._classic = token
        else:
            self._stable = token
        return {"access_token": token, "expires_in": self._remaining(token, now)}

    def _remaining(self, token: str, now: float) -> int | float:
        left = self._tokens[token] - now
        # The real API announces whole seconds; never announce a token as already dead.
        return max(1, round(left)) if float(self.expires_in).is_integer() else left

    def _check_token(self, token: str | None) -> dict[str, Any] | None:
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        expiry, now = self._tokens.get(token), time.monotonic()
        if token in self._revoke_at and self._revoke_at[token] <= now:
            del self._revoke_at[token]
            self._tokens.pop(token, None)
            expiry = None
        if expiry is None:
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
        if expiry <= now:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return None


class _Server(ThreadingHTTPServer):
    """Knows its connections, so :meth:`FakeWeChat.close` can end the kept-alive ones."""

    # Handler threads are joined on close, so none outlives the test that started it.
    daemon_threads = False
    # socketserver's 5 would drop the SYNs of a burst of new connections (an async client's
    # first gather), which the client sees as a 1 s stall and resets.
    request_queue_size = 128

    def __init__(self, fake: FakeWeChat) -> None:
        super().__init__(("127.0.0.1", 0), _handler_for(fake))
        self.fake = fake

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.fake._lock:
            self.fake._sockets.add(request)
            self.fake._connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.fake._lock:
            self.fake._sockets.discard(request)
        super().shutdown_request(request)


def _handler_for(fake: FakeWeChat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        #: Headers and body go out as two writes; without this each answer waits for the
        #: client's delayed ACK (40 ms).
        disable_nagle_algorithm = True
        #: A client that connects and sends nothing cannot hold up close() for long.
        timeout = 5

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {name: values[0] for name, values in parse_qs(parts.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fake._delay(parts.path)
            content_type = self.headers.get("Content-Type", "")
            reply = fake._handle(method, parts.path, query, content_type, raw)
            if reply is None:
                self.close_connection = True
                return
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                self.close_connection = True  # the client gave up (its timeout)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
