"""A fake of WeChat's server API: a real HTTP server on loopback, for tests and benchmarks.

Start it as a context manager; it listens on ``127.0.0.1`` on a port the OS picks and serves
from a thread until the block ends::

    with FakeWeChat("wx1a2b3c4d5e6f7a8b", "0123456789abcdef0123456789abcdef") as fake:
        api = WeChatAPI(fake.appid, fake.secret, store, base_url=fake.url)
        api.send_text("oUser", "hi")
        assert fake.token_requests == 1
        assert fake.messages == [{"touser": "oUser", "msgtype": "text", "text": {"content": "hi"}}]

It behaves like the real API where the service depends on it (PROTOCOL.md §7):

* ``GET /cgi-bin/token?grant_type=client_credential&appid=...&secret=...`` issues a new token on
  every call; the previous one stops working ``old_token_grace`` seconds later (the real API
  allows minutes; the default 0 makes racing refreshes fail at once, so tests see them).
* ``POST /cgi-bin/stable_token`` with ``{"grant_type", "appid", "secret", "force_refresh"}``
  returns the same token until it expires or ``force_refresh`` is true, which replaces it and
  revokes the old one. Stable and classic tokens are independent, as on the real API.
* ``POST /cgi-bin/message/custom/send`` and ``/cgi-bin/message/custom/typing`` with
  ``?access_token=`` record their JSON body in :attr:`messages` / :attr:`typing`.
* Errors: 40013 wrong AppID, 40001 wrong secret, 40002 wrong grant_type, 41001 no
  access_token, 40001 unknown or revoked token, 42001 expired token, 47001 body not a JSON
  object; any other path is an HTTP 404.

Scripting: :meth:`fail_next` answers the next calls of a path with an errcode, :meth:`drop_next`
closes the connection without an answer, :meth:`set_latency` delays answers,
:meth:`revoke_tokens` and :meth:`expire_tokens` kill every token. Every observation
(:attr:`token_requests`, :attr:`requests`, :attr:`messages`, :attr:`typing`) is read under the
fake's lock and returned as a copy, so tests may poll them while requests are in flight.

No pytest here: benchmarks and scripts use the fake too.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN_PATH = "/cgi-bin/token"
STABLE_TOKEN_PATH = "/cgi-bin/stable_token"
SEND_PATH = "/cgi-bin/message/custom/send"
TYPING_PATH = "/cgi-bin/message/custom/typing"

_OK = {"errcode": 0, "errmsg": "ok"}


@dataclass(frozen=True)
class Received:
    """One request as the fake saw it, and what it answered."""

    method: str
    path: str
    #: The query string, first value of each name (``access_token`` and ``secret`` included).
    query: dict[str, str]
    #: The decoded JSON body; None for a GET or a body that is not JSON.
    body: Any
    #: The errcode answered (0 for success), None when the connection was dropped.
    errcode: int | None


class FakeWeChat:
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
        self.appid = appid
        self.secret = secret
        self.expires_in = expires_in
        self.old_token_grace = old_token_grace
        self._lock = threading.Lock()
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
        self._messages: list[dict[str, Any]] = []
        self._typing: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeWeChat:
        """Bind a free loopback port and serve from a thread; :meth:`close` undoes it."""
        if self._server is not None:
            raise RuntimeError("the fake is already running")
        self._closing.clear()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # Handler threads are joined on close, so none outlives the test that started it.
        server.daemon_threads = False
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-wechat"
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut delays short, and wait for every handler thread to finish."""
        if self._server is None or self._thread is None:
            return
        self._closing.set()
        self._server.shutdown()
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
    def messages(self) -> list[dict[str, Any]]:
        """Bodies of the customer-service messages accepted, in order."""
        with self._lock:
            return list(self._messages)

    @property
    def typing(self) -> list[dict[str, Any]]:
        """Bodies of the typing-indicator calls accepted, in order."""
        with self._lock:
            return list(self._typing)

    # -- the API ----------------------------------------------------------------------------

    def _delay(self, path: str) -> None:
        with self._lock:
            seconds = self._latency.get(path) or self._latency[None]
        if seconds > 0:
            self._closing.wait(seconds)

    def _handle(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[dict[str, Any] | None, int]:
        """The answer and HTTP status for one request; None for a dropped connection."""
        with self._lock:
            if path in (TOKEN_PATH, STABLE_TOKEN_PATH):
                self._token_requests += 1
            drops, failures = self._drops.get(path), self._failures.get(path)
            answer: dict[str, Any] | None
            if drops:
                if drops.popleft():
                    self._answer(method, path, query, body)
                answer, status = None, 200
            elif failures:
                code, errmsg = failures.popleft()
                text = errmsg if errmsg is not None else f"scripted failure {code}"
                answer, status = {"errcode": code, "errmsg": text}, 200
            else:
                answer, status = self._answer(method, path, query, body)
            errcode = None if answer is None else int(answer.get("errcode", 0))
            self._requests.append(Received(method, path, query, body, errcode))
            return answer, status

    def _answer(
        self, method: str, path: str, query: dict[str, str], body: Any
    ) -> tuple[dict[str, Any], int]:
        if (method, path) == ("GET", TOKEN_PATH):
            return self._issue(query, classic=True, force=True), 200
        known = {STABLE_TOKEN_PATH, SEND_PATH, TYPING_PATH}
        if method != "POST" or path not in known:
            return {"errcode": 404, "errmsg": f"no such API: {method} {path}"}, 404
        if not isinstance(body, dict):
            return {"errcode": 47001, "errmsg": "data format error"}, 200
        if path == STABLE_TOKEN_PATH:
            return self._issue(body, classic=False, force=body.get("force_refresh") is True), 200
        refused = self._check_token(query.get("access_token"))
        if refused is not None:
            return refused, 200
        (self._messages if path == SEND_PATH else self._typing).append(body)
        return dict(_OK), 200

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


def _handler_for(fake: FakeWeChat) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
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
            body: Any = None
            if method == "POST":
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
            fake._delay(parts.path)
            answer, status = fake._handle(method, parts.path, query, body)
            if answer is None:
                self.close_connection = True
                return
            data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (its timeout); nothing to tell it

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler
