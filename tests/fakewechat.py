"""A fake of WeChat's server API as a real HTTP server on loopback, for tests and benchmarks.

It behaves like the real one where the service depends on it: ``/cgi-bin/token`` issues a new
token on every call and revokes the previous one, ``/cgi-bin/stable_token`` returns the same
token until ``force_refresh``, API calls check the token (40001 otherwise), and errors can be
scripted per path. It counts token requests and records every customer-service message::

    with FakeWeChat(appid, secret) as fake:
        api = WeChatAPI(appid, secret, store, base_url=fake.url)
        ...
        assert fake.token_requests == 1
        assert fake.messages[0]["text"]["content"] == "hi"
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeWeChat:
    """The fake server; use it as a context manager (it runs in a thread of its own)."""

    def __init__(self, appid: str, secret: str, *, latency: float = 0.0) -> None:
        self.appid = appid
        self.secret = secret
        #: Seconds every answer is delayed.
        self.latency = latency
        self.token_requests = 0
        #: Bodies of /cgi-bin/message/custom/send and /typing calls that succeeded.
        self.messages: list[dict[str, Any]] = []
        self.typing: list[dict[str, Any]] = []
        self._tokens: set[str] = set()
        self._stable: str | None = None
        self._failures: dict[str, deque[int]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL to give the client as ``base_url``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeWeChat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``path`` with ``errcode``."""
        with self._lock:
            self._failures[path].extend([errcode] * times)

    def revoke_tokens(self) -> None:
        """Invalidate every issued token, as a /cgi-bin/token call elsewhere would."""
        with self._lock:
            self._tokens.clear()
            self._stable = None

    # -- the API ----------------------------------------------------------------------------

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any) -> dict[str, Any]:
        with self._lock:
            failures = self._failures.get(path)
            if failures:
                code = failures.popleft()
                return {"errcode": code, "errmsg": f"scripted failure {code}"}
            if path == "/cgi-bin/token" and method == "GET":
                return self._token(query.get("appid"), query.get("secret"), new=True)
            if path == "/cgi-bin/stable_token" and method == "POST":
                force = bool(body.get("force_refresh"))
                return self._token(body.get("appid"), body.get("secret"), new=force)
            if query.get("access_token") not in self._tokens:
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
            if path == "/cgi-bin/message/custom/send" and method == "POST":
                self.messages.append(body)
                return {"errcode": 0, "errmsg": "ok"}
            if path == "/cgi-bin/message/custom/typing" and method == "POST":
                self.typing.append(body)
                return {"errcode": 0, "errmsg": "ok"}
        return {"errcode": 404, "errmsg": f"no such API {method} {path}"}

    def _token(self, appid: Any, secret: Any, *, new: bool) -> dict[str, Any]:
        self.token_requests += 1
        if appid != self.appid:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if secret != self.secret:
            return {"errcode": 40001, "errmsg": "invalid credential, secret is wrong"}
        if new or self._stable is None:
            if new and self._stable is not None:
                self._tokens.discard(self._stable)
            self._stable = "TOKEN_" + secrets.token_hex(8)
            self._tokens.add(self._stable)
        return {"access_token": self._stable, "expires_in": 7200}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def _serve(self, method: str) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if fake.latency:
                    time.sleep(fake.latency)
                answer = json.dumps(fake._answer(method, parts.path, query, body)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output quiet."""

        return Handler
