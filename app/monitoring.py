"""/healthz and /metrics: is the service up, can it reach its store, and what is it doing.

The service's own app serves both at its root; an application that embeds the service gets them
only when it asks, under the service's URL prefix, so its own root stays its own.

Under gunicorn each worker is a process of its own; with ``PROMETHEUS_MULTIPROC_DIR`` set
(gunicorn.conf.py does it) the workers write their samples to files there and /metrics sums
them, so a scrape sees the whole service rather than whichever worker answered it. The metrics
themselves live in :mod:`app.metrics`, which the Flask-free layers import.
"""

from __future__ import annotations

import os

from flask import Flask, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from .store import StoreError


def init_app(app: Flask, *, prefix: str, healthz: bool, metrics: bool) -> None:
    """Add ``<prefix>/healthz`` and ``<prefix>/metrics`` to ``app``, each if asked for.

    The endpoints are named ``wechat_healthz`` and ``wechat_metrics``, clear of the app's own.
    """
    if healthz:
        app.add_url_rule(f"{prefix}/healthz", "wechat_healthz", healthz_view)
    if metrics:
        app.add_url_rule(f"{prefix}/metrics", "wechat_metrics", metrics_view)


def healthz_view() -> tuple[Response, int]:
    """200 when the service can reach its shared store; 503 while it runs degraded."""
    try:
        current_app.extensions["wechat"].store.ping()
    except StoreError as e:
        return jsonify(status="degraded", store=e.message), 503
    return jsonify(status="ok", store="ok"), 200


def metrics_view() -> Response:
    """Prometheus' text format, summed over gunicorn workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
