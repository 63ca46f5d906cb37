"""Log lines for people running the service: one per push, never a secret or message content.

Lines go to stderr, where gunicorn and systemd collect them, as plain text or, with
``WX_LOG_FORMAT=json``, as one JSON object per line for log shippers. A push line names the
account's original ID, the message type, MsgId, the outcome and the latency; message content and
user OpenIDs appear only with ``WX_LOG_CONTENT=true`` (debugging, not production). Other lines
that concern one user (slow handlers, late delivery) name them by :func:`pseudonym`. Every line
logged for an account's work carries the account's name (WX_ACCOUNTS), from :mod:`app.scope`.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

from . import scope
from .wechat.identity import pseudonym as pseudonym

#: The package's root logger; every module logs below it.
ROOT = "app"
_FIELDS = ("account", "to", "type", "msg_id", "outcome", "latency_ms", "attempt", "user", "content")


class AccountFilter(logging.Filter):
    """Gives each line logged for an account's work an ``account`` attribute, its name.

    The service's own handler has it; an application that embeds the service and has handlers
    of its own can add it to them, and use ``%(account)s`` in their formats.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        name = scope.account()
        if name and not hasattr(record, "account"):
            record.account = name
        return True


class _Seconds:
    """The text of a timestamp to the second, made once a second.

    ``time.strftime`` was an eighth of the cost of a push's log line, for text that changes once
    a second. The last second and its text are kept as one tuple, so a thread never reads one
    with the other's partner.
    """

    def __init__(self, render: Callable[[float], str]) -> None:
        self._render = render
        self._last: tuple[int, str] = (-1, "")

    def __call__(self, created: float) -> str:
        second = int(created)
        last = self._last
        if last[0] != second:
            last = self._last = (second, self._render(created))
        return last[1]


class _Formatter(logging.Formatter):
    """A ``logging.Formatter`` whose ``asctime`` (the same text) is made once a second."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self._seconds = _Seconds(
            lambda created: time.strftime(self.default_time_format, self.converter(created))
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return f"{self._seconds(record.created)},{int(record.msecs):03d}"


class TextFormatter(_Formatter):
    """``<time> <LEVEL> <logger> [<account>]: <message>``, without the brackets when the line is
    not for an account."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._for_account = _Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(account)s]: %(message)s"
        )

    def format(self, record: logging.LogRecord) -> str:
        if hasattr(record, "account"):
            return self._for_account.format(record)
        return super().format(record)


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the push fields if any."""

    def __init__(self) -> None:
        super().__init__()
        self._seconds = _Seconds(
            lambda created: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        )

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": f"{self._seconds(record.created)}.{int(record.msecs):03d}Z",
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
    handler.addFilter(AccountFilter())
    handler.setFormatter(JSONFormatter() if log_format == "json" else TextFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
