"""How the API client reaches WeChat: one callable per request, and the urllib one by default.

The seam is a single function type rather than a class hierarchy (the ``MockTransport`` idea of
httpx): tests pass a function that answers from a script, and anything that can send a JSON
request (a proxy-aware session, a recorder) fits without touching the client.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

#: ``(method, url, json body or None) -> the decoded JSON object of the answer``. A transport
#: raises OSError when the network fails (:class:`RequestNotSent` when the request certainly
#: never reached the server) and ValueError when the answer is not a JSON object.
Transport = Callable[[str, str, Mapping[str, Any] | None], dict[str, Any]]

#: Answers larger than this are not WeChat's; reading them whole would only waste memory.
MAX_ANSWER = 1 << 20

#: ``access_token=...`` and ``secret=...`` in a URL.
_SECRET_IN_QUERY = re.compile(r"\b((?:access_token|secret)=)[^&\s'\"#]+")


class RequestNotSent(ConnectionError):
    """The request certainly did not reach the server, so repeating it cannot do anything twice.

    The urllib transport raises it for failures while connecting or sending, which urllib
    wraps in ``URLError`` (failures while waiting for the answer come unwrapped); other
    transports may raise it for the same reason.
    """


def urllib_transport(timeout: float) -> Transport:
    """The default transport: one request with the standard library, TLS verified.

    :param timeout: seconds for connecting and for each read of the answer.
    """

    def send(method: str, url: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = {} if data is None else {"Content-Type": "application/json; charset=utf-8"}
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read(MAX_ANSWER + 1)
        except urllib.error.HTTPError as e:
            e.close()  # it holds the response and its socket
            raise
        except urllib.error.URLError as e:
            raise RequestNotSent(f"not sent: {e.reason}") from e
        if len(raw) > MAX_ANSWER:
            raise ValueError(f"answer is larger than {MAX_ANSWER} bytes")
        answer = json.loads(raw)
        if not isinstance(answer, dict):
            raise ValueError(f"answer is a JSON {type(answer).__name__}, expected an object")
        return answer

    return send


def redact(text: str, *secrets: str) -> str:
    """Return ``text`` without the given secrets and without any ``access_token=``/``secret=``
    value, for log lines and error messages (an access_token travels in every API URL)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _SECRET_IN_QUERY.sub(r"\1***", text)
