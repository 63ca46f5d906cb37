"""How a :class:`~app.api.call.Call` goes over HTTP, and what an answer means.

The client sends with httpx: one library gives the sync and the async client the same request
model, a pool of kept connections (one TLS handshake per connection rather than per call),
separate connect and read timeouts, multipart uploads and streamed binary answers, all of which
urllib would need written by hand. Tests replace the network with ``httpx.MockTransport`` (the
``transport`` argument of the clients) or talk to the fake API over loopback.

What is decided here, for both clients:

* the request: the URL with its query, a JSON body as UTF-8 without ``\\u`` escapes (WeChat
  answers 40033 to escapes, API.md §0), or a multipart file;
* the answer: any 2xx JSON object whose ``errcode`` is absent or 0 is a success; a non-zero
  one is the :class:`~app.api.errors.APIError` subclass for it; a file counts only where the
  call expects one; anything else is a :class:`BadAnswer`;
* the retry rule: which failures certainly left nothing at WeChat (:func:`never_sent`);
* redaction: no access_token or AppSecret in an error message or a log line, httpx's own
  request log included.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from typing import Any

import httpx

from .call import Answer, Call
from .errors import api_error

#: JSON answers larger than this are not WeChat's; reading them whole would only waste memory.
MAX_JSON = 1 << 20
#: Files: media are at most 10 MB (API.md §6); QR-code images a few KiB.
MAX_FILE = 16 << 20

#: ``access_token=...`` and ``secret=...`` in a URL.
_SECRET_IN_QUERY = re.compile(r"\b((?:access_token|secret)=)[^&\s'\"#]+")


class BadAnswer(Exception):
    """An answer that is not WeChat's: an HTTP error status, not a JSON object, too large.

    :param retryable: whether asking again may help (5xx and garbled answers: yes; 4xx: no).
    """

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


def never_sent(error: Exception) -> bool:
    """Whether ``error`` means the request certainly never reached the server: the
    connection could not be made, or no pooled connection came free. Repeating such a request
    cannot do anything twice. A timeout or a reset after sending may have reached WeChat."""
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def url_for(call: Call[Any], base: str, token: str | None) -> str:
    """The full URL of ``call``: ``base`` + path + query (access_token first)."""
    if call.absolute:
        return call.path
    params = ({} if token is None else {"access_token": token}) | dict(call.params)
    query = "?" + urllib.parse.urlencode(params) if params else ""
    return base + call.path + query


def request_content(call: Call[Any]) -> dict[str, Any]:
    """The keyword arguments of httpx's ``stream()`` that carry the body of ``call``."""
    if call.upload is not None:
        upload = call.upload
        return {"files": {upload.name: (upload.filename, upload.content, upload.content_type)}}
    if call.body is None:
        return {}
    data = json.dumps(call.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return {"content": data, "headers": {"Content-Type": "application/json; charset=utf-8"}}


class Body:
    """Collects an answer's chunks, refusing to hold more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._limit:
            raise BadAnswer(f"answer is larger than {self._limit} bytes", retryable=False)
        self._chunks.append(chunk)

    def bytes(self) -> bytes:
        return b"".join(self._chunks)


def answer_limit(call: Call[Any]) -> int:
    return MAX_FILE if call.binary else MAX_JSON


def decode(
    call: Call[Any], status: int, content_type: str, content: bytes, *, secrets: tuple[str, ...]
) -> Answer:
    """Read one HTTP answer to ``call``.

    :raises APIError: the JSON answer carries a non-zero errcode (its subclass for the code).
    :raises BadAnswer: an HTTP error status, a body that is neither JSON nor an expected file,
        an errcode that is not a number.
    """
    if not 200 <= status < 300:
        raise BadAnswer(f"HTTP {status}", retryable=status >= 500)
    media_type = content_type.split(";")[0].strip().lower()
    is_json = media_type in ("application/json", "text/plain") or content.lstrip()[:1] == b"{"
    if call.binary and not is_json:
        return Answer({}, content, media_type)
    try:
        answer = json.loads(content)
    except ValueError:
        raise BadAnswer("answer is not JSON", retryable=True) from None
    if not isinstance(answer, dict):
        raise BadAnswer(f"answer is a JSON {type(answer).__name__}, not an object", retryable=True)
    errcode = answer.get("errcode") or 0
    try:
        code = int(errcode)
    except (TypeError, ValueError):
        raise BadAnswer(f"errcode {errcode!r} is not a number", retryable=False) from None
    if code:
        path = call.path if not call.absolute else urllib.parse.urlsplit(call.path).path
        raise api_error(code, redact(str(answer.get("errmsg", "")), *secrets), path=path)
    return Answer(answer, content, media_type)


def redact(text: str, *secrets: str) -> str:
    """Return ``text`` without the given secrets and without any ``access_token=``/``secret=``
    value, for log lines and error messages (an access_token travels in every API URL)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_IN_QUERY.sub(r"\1***", text)


class _RedactQuery(logging.Filter):
    """Takes the access_token out of httpx's ``HTTP Request: POST https://...`` log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact(str(arg)) if isinstance(arg, str | httpx.URL) else arg for arg in record.args
            )
        return True


def redact_httpx_log() -> None:
    """Install the redaction on httpx's logger once per process."""
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQuery) for f in logger.filters):
        logger.addFilter(_RedactQuery())
