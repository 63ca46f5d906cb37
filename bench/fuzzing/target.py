"""The service under test, in this process: ``create_app`` behind Flask's test client.

An internal error is a request that reached the catch-all handler of :mod:`app.views` (it logs
"internal error on ..." with the traceback and answers "success"), any other log record at
ERROR that carries a traceback (a failing handler, Flask's own "Exception on ..."), any 5xx, or
an exception that escaped the test client. The log records are caught by a
:class:`logging.Handler` on the ``app`` logger, never by reading text; while a target is open
that handler is the logger's only one and nothing reaches the terminal.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from app import create_app
from config import Settings, SlowStrategy

from .wire import AES_KEY, APPID, PATH, TOKEN, Request

ROOT = Path(__file__).resolve().parents[2]

#: One account with a key, a memory store, a short deadline and the echoing handlers. Slow
#: handlers are answered "success" at the deadline rather than let lapse, so that a 503 (the
#: test client's stand-in for a lapse) is always a fault.
SETTINGS = Settings(
    token=TOKEN,
    appid=APPID,
    aes_key=AES_KEY,
    path=PATH,
    store_url="memory://",
    deadline=0.5,
    slow_strategy=SlowStrategy.OFF,
    handlers="bench.fuzzing.echo",
    handler_threads=4,
    metrics=False,
)


@dataclass(frozen=True)
class Failure:
    """One internal error: what went wrong, where, and what it said."""

    #: The exception's type, or ``HTTP 5xx`` for a server error without one.
    kind: str
    #: ``path:line (function)`` of the deepest frame in this repository.
    where: str
    #: The exception's message, ASCII-escaped and cut.
    message: str

    @property
    def signature(self) -> str:
        """What makes two failures the same bug: the type and the line that raised."""
        return f"{self.kind} at {self.where}"


@dataclass(frozen=True)
class Outcome:
    """What one request did."""

    #: HTTP status; None when an exception escaped the test client.
    status: int | None
    seconds: float
    failure: Failure | None = None
    #: The error class named in the refusal line of a 4xx, e.g. ``MalformedBody``.
    refusal: str | None = None
    body: bytes = b""
    #: Whether the service answered it as a retry, with the bytes of an earlier attempt.
    retry: bool = False


def failure_of(error: BaseException) -> Failure:
    """Describe an exception by its type, its deepest frame in our code, and its message."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename]
    where = ""
    if ours or frames:
        frame = (ours or frames)[-1]
        path = Path(frame.filename)
        shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
        where = f"{shown}:{frame.lineno} ({frame.name})"
    return Failure(type(error).__name__, where, ascii(str(error))[:300])


class _Capture(logging.Handler):
    """Keeps the failures and the refusal reason logged during one request."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: list[Failure] = []
        self.refusal: str | None = None
        self.retry = False

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR and record.exc_info and record.exc_info[1]:
            self.failures.append(failure_of(record.exc_info[1]))
        elif record.name == "app.views" and str(record.msg).startswith("refused"):
            args = record.args if isinstance(record.args, tuple) else ()
            self.refusal = str(args[-1]) if args else "?"
        elif record.name == "app.lifecycle.service" and str(record.msg).startswith("retry"):
            self.retry = True

    def reset(self) -> None:
        self.failures.clear()
        self.refusal = None
        self.retry = False


class Target:
    """The app under test, open as a context manager: ``with Target() as target: ...``."""

    def __init__(self, settings: Settings = SETTINGS) -> None:
        self._settings = settings
        self._capture = _Capture()
        self._logger = logging.getLogger("app")
        self._saved: tuple[list[logging.Handler], int, bool, int] | None = None

    def __enter__(self) -> Target:
        logger = self._logger
        service = logging.getLogger("app.lifecycle.service")
        self._saved = (logger.handlers[:], logger.level, logger.propagate, service.level)
        logger.handlers = [self._capture]
        logger.setLevel(logging.WARNING)
        logger.propagate = False
        service.setLevel(logging.INFO)  # for its "retry ... answered from the ledger"
        self.app = create_app(self._settings)
        self._client = self.app.test_client(use_cookies=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.app.extensions["wechat"].close()
        if self._saved is not None:
            handlers, level, propagate, service_level = self._saved
            self._logger.handlers = handlers
            self._logger.setLevel(level)
            self._logger.propagate = propagate
            logging.getLogger("app.lifecycle.service").setLevel(service_level)

    def send(self, request: Request) -> Outcome:
        """Send one request and say how it went."""
        capture = self._capture
        capture.reset()
        started = time.perf_counter()
        try:
            response = self._client.open(
                PATH,
                method=request.method,
                query_string=request.query,
                data=request.body,
                headers=list(request.headers),
            )
        except Exception as e:  # the fuzzer's one catch-all: an escape is a finding
            return Outcome(None, time.perf_counter() - started, failure_of(e))
        seconds = time.perf_counter() - started
        status = response.status_code
        failure = capture.failures[0] if capture.failures else None
        if failure is None and status >= 500:
            failure = Failure(f"HTTP {status}", "", ascii(response.get_data()[:200]))
        body = response.get_data()
        return Outcome(status, seconds, failure, capture.refusal, body, capture.retry)
