"""Log lines for people running the service: one per push, never a secret or message content.

Lines go to stderr, where gunicorn and systemd collect them, as plain text or, with
``WX_LOG_FORMAT=json``, as one JSON object per line for log shippers. A push line names the
account, the message type, MsgId, the outcome and the latency; message content and user
OpenIDs appear only with ``WX_LOG_CONTENT=true`` (debugging, not production). Other lines that
concern one user (slow handlers, late delivery) name them by :func:`pseudonym`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from .wechat.identity import pseudonym as pseudonym

#: The package's root logger; every module logs below it.
ROOT = "app"
_FIELDS = ("account", "type", "msg_id", "outcome", "latency_ms", "attempt", "user", "content")


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the push fields if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(log_format: str) -> None:
    """Send the package's log lines to stderr once, in ``text`` or ``json``.

    Leaves logging alone when the application (or a test runner) already configured a
    handler on the package logger, so embedding the app never doubles lines.
    """
    logger = logging.getLogger(ROOT)
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
