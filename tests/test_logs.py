"""The service's log lines: the text and JSON formats, with the time made once a second."""

from __future__ import annotations

import json
import logging
import time

import pytest

from app import logs

#: Times in order and out of it, across seconds and an hour.
CREATED = [1767225600.0, 1767225600.25, 1767225600.999, 1767225601.0, 1767225600.5, 1767229200.7]


def _record(created: float, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("app.views", logging.INFO, __file__, 1, "push %s", ("x",), None)
    record.created = created
    record.msecs = int((created - int(created)) * 1000) + 0.0
    record.__dict__.update(extra)
    return record


@pytest.mark.parametrize("extra", [{}, {"account": "shop"}])
def test_text_lines_are_what_the_standard_formatter_writes(extra: dict[str, object]) -> None:
    fmt = "%(asctime)s %(levelname)s %(name)s" + (" [%(account)s]" if extra else "")
    standard = logging.Formatter(fmt + ": %(message)s")
    formatter = logs.TextFormatter()
    for created in CREATED:
        assert formatter.format(_record(created, **extra)) == standard.format(
            _record(created, **extra)
        )


def test_json_lines_carry_the_utc_time_to_the_millisecond() -> None:
    formatter = logs.JSONFormatter()
    for created in CREATED:
        line = json.loads(formatter.format(_record(created)))
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
        assert line["time"] == f"{seconds}.{int((created % 1) * 1000):03d}Z"


@pytest.mark.parametrize("formatter", [logs.TextFormatter(), logs.JSONFormatter()])
def test_the_time_is_formatted_once_a_second(
    formatter: logging.Formatter, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    strftime = time.strftime

    def counted(fmt: str, *args: time.struct_time) -> str:
        calls.append(fmt)
        return strftime(fmt, *args)

    monkeypatch.setattr(logs.time, "strftime", counted)
    for n in range(10):
        formatter.format(_record(1767225600 + n / 10))
    formatter.format(_record(1767225601.5))
    assert len(calls) == 2
