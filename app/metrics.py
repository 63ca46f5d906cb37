"""The service's Prometheus metrics, kept free of Flask so every layer can count.

They are module-level prometheus-client objects, the library's idiom: every app in a process
counts into the same series, so tests read differences, not absolute values.

Every series has an ``account`` label, the name of the account it counts for (WX_ACCOUNTS). The
name is not passed by whoever counts: it is the account whose work is running when the count is
made (:mod:`app.scope`), so the service, late delivery and the API client count as they always
did. Counts made outside any account's work have ``account=""``.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.context_managers import Timer

from . import scope

_Metric = TypeVar("_Metric", Counter, Gauge, Histogram)


class _Series(Generic[_Metric]):
    """The series of one metric by label values, the current account's name first.

    prometheus-client's ``labels()`` takes a lock and rebuilds its key on every call, which
    costs as much as the count itself; each series is asked of it once and kept here. They are
    the very objects it keeps, so its multiprocess files and its reset after a fork (done on
    each count) are unchanged. The label values are bounded, so this stays small.
    """

    def __init__(self, metric: _Metric) -> None:
        self._metric: _Metric = metric
        self._series: dict[tuple[str, ...], _Metric] = {}

    def __call__(self, *values: str) -> _Metric:
        key = (scope.account(), *values)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._metric.labels(*key)
        return series


class AccountCounter:
    """A counter whose ``account`` label is filled in from :func:`app.scope.account`."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> None:
        self._series = _Series(Counter(name, documentation, ["account", *labels]))

    def labels(self, *values: str) -> Counter:
        """The series of the current account with the other labels set to ``values``."""
        return self._series(*values)

    def inc(self, amount: float = 1) -> None:
        """Count ``amount`` for the current account."""
        self.labels().inc(amount)


class AccountHistogram:
    """A histogram whose ``account`` label is filled in from :func:`app.scope.account`."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self._series = _Series(Histogram(name, documentation, ["account"], buckets=buckets))

    def time(self) -> Timer:
        """Observe the duration of a ``with`` block for the current account."""
        return self._series().time()


class AccountGauge:
    """A gauge, summed over live processes, whose ``account`` label is filled in from
    :func:`app.scope.account`."""

    def __init__(self, name: str, documentation: str) -> None:
        self._series = _Series(Gauge(name, documentation, ["account"], multiprocess_mode="livesum"))

    def inc(self) -> None:
        """Add one for the current account."""
        self._series().inc()

    def dec(self) -> None:
        """Take one away for the current account."""
        self._series().dec()


PUSHES = AccountCounter("wx_pushes", "Pushes answered, by type and outcome.", ("type", "outcome"))
REFUSED = AccountCounter("wx_refused", "Requests refused with a 4xx, by reason.", ("reason",))
HANDLER_SECONDS = AccountHistogram(
    "wx_handler_seconds",
    "Time a handler took, whether or not it made the deadline.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4.5, 8, 15, 30),
)
DEADLINE_MISSES = AccountCounter(
    "wx_deadline_misses", "Attempts whose handler was not done in time."
)
DEDUP_HITS = AccountCounter(
    "wx_dedup_hits", "Retries answered from, or waiting on, an earlier run."
)
LATE_DELIVERIES = AccountCounter(
    "wx_late_deliveries", "Replies sent after their push, by path.", ("path",)
)
KEPT_REPLIES = AccountCounter(
    "wx_kept_replies",
    "Late replies kept for the user's next message, by why: no_appsecret, window_closed"
    " (45015), allowance_used (45047).",
    ("reason",),
)
TOKEN_REFRESHES = AccountCounter("wx_token_refreshes", "access_token fetches from WeChat.")
TAKEOVERS = AccountCounter(
    "wx_takeovers", "Pushes run again because the process running them died."
)
HANDLERS_RUNNING = AccountGauge("wx_handlers_running", "Handler runs in progress.")
HANDLERS_HUNG = AccountCounter(
    "wx_handlers_hung", "Handler runs still going a minute after they began."
)
