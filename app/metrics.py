"""The service's Prometheus metrics, kept free of Flask so every layer can count.

They are module-level prometheus-client objects, the library's idiom: every app in a process
counts into the same series, so tests read differences, not absolute values.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUSHES = Counter("wx_pushes", "Pushes answered, by type and outcome.", ["type", "outcome"])
REFUSED = Counter("wx_refused", "Requests refused with a 4xx, by reason.", ["reason"])
HANDLER_SECONDS = Histogram(
    "wx_handler_seconds",
    "Time a handler took, whether or not it made the deadline.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 4.5, 8, 15, 30),
)
DEADLINE_MISSES = Counter("wx_deadline_misses", "Attempts whose handler was not done in time.")
DEDUP_HITS = Counter("wx_dedup_hits", "Retries answered from, or waiting on, an earlier run.")
LATE_DELIVERIES = Counter("wx_late_deliveries", "Replies sent after their push, by path.", ["path"])
TOKEN_REFRESHES = Counter("wx_token_refreshes", "access_token fetches from WeChat.")
TAKEOVERS = Counter("wx_takeovers", "Pushes run again because the process running them died.")
HANDLERS_RUNNING = Gauge(
    "wx_handlers_running", "Handler runs in progress.", multiprocess_mode="livesum"
)
HANDLERS_HUNG = Counter("wx_handlers_hung", "Handler runs still going a minute after they began.")
