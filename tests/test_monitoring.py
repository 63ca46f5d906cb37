"""/healthz and /metrics through HTTP, in one process and summed over gunicorn workers."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.testing import PushBuilder, WeChatClient
from config import Settings
from tests.conftest import AES_KEY, APPID, TOKEN
from tests.servers import gunicorn, request


def sample(client: FlaskClient, name: str, **labels: str) -> float:
    """The value of one series of the default account on /metrics (0 when absent)."""
    text = client.get("/metrics").get_data(as_text=True)
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted({"account": "default", **labels}.items()))
    pattern = rf"^{name}\{{{re.escape(wanted)}\}} ([0-9.e+]+)$"
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_healthz_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "ok", "store": "ok"})


def test_healthz_degraded_when_the_shared_store_is_down(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, store_url="redis://127.0.0.1:1/0"))
    response = app.test_client().get("/healthz")
    app.extensions["wechat"].close()
    assert response.status_code == 503
    assert response.json is not None
    assert response.json["status"] == "degraded"
    assert "127.0.0.1:1" in response.json["store"]


def test_push_refusal_and_dedup_counters_move(app: Flask, client: FlaskClient) -> None:
    wechat = WeChatClient(app)
    before = {
        "reply": sample(client, "wx_pushes_total", type="text", outcome="reply"),
        "refused": sample(client, "wx_refused_total", reason="MissingParameter"),
        "dedup": sample(client, "wx_dedup_hits_total"),
        "handler": sample(client, "wx_handler_seconds_count"),
    }
    wechat.text("hi")
    wechat.send({"MsgType": "text", "Content": "twice"}, attempts=2)
    client.post("/wx", data=b"<xml/>")
    assert sample(client, "wx_pushes_total", type="text", outcome="reply") == before["reply"] + 3
    assert sample(client, "wx_refused_total", reason="MissingParameter") == before["refused"] + 1
    assert sample(client, "wx_dedup_hits_total") == before["dedup"] + 1
    assert sample(client, "wx_handler_seconds_count") == before["handler"] + 2


def test_deadline_misses_are_counted(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, handlers="tests.service_handlers"))
    client = app.test_client()
    before = sample(client, "wx_deadline_misses_total")
    assert WeChatClient(app).text("sleep 1.3").lapsed
    assert sample(client, "wx_deadline_misses_total") == before + 1
    app.extensions["wechat"].close()


def test_pushes_are_counted_with_their_log_lines_turned_off(
    app: Flask, client: FlaskClient
) -> None:
    logger = logging.getLogger("app")
    level = logger.level
    before = sample(client, "wx_pushes_total", type="text", outcome="reply")
    logger.setLevel(logging.WARNING)  # not the attribute: setLevel clears the loggers' caches
    try:
        assert WeChatClient(app).text("quiet").reply is not None
    finally:
        logger.setLevel(level)
    assert sample(client, "wx_pushes_total", type="text", outcome="reply") == before + 1


def test_metrics_can_be_turned_off(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, metrics=False))
    assert app.test_client().get("/metrics").status_code == 404
    assert app.test_client().get("/healthz").status_code == 200
    app.extensions["wechat"].close()


def test_workers_metrics_are_summed(tmp_path: Path) -> None:
    env = {
        "WX_TOKEN": TOKEN,
        "WX_APPID": APPID,
        "WX_AES_KEY": AES_KEY,
        "WX_STORE_URL": f"sqlite:///{tmp_path}/ledger.db",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    (tmp_path / "metrics").mkdir()
    # Builds pushes only: the app behind the builder is never served, nor its store written.
    wechat = PushBuilder(Settings(token=TOKEN, appid=APPID, aes_key=AES_KEY))
    with gunicorn(env, workers=3, log=tmp_path / "gunicorn.log") as url:
        for n in range(30):
            query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": f"m{n}"}))
            assert request("POST", url + "/wx", query, body)[0] == 200
        time.sleep(0.2)
        totals = set()
        for _ in range(6):  # whichever worker answers, the sum is the same
            text = request("GET", url + "/metrics")[1].decode()
            found = re.search(
                r'^wx_pushes_total\{account="default",outcome="reply",type="text"\} (\S+)$',
                text,
                re.M,
            )
            totals.add(float(found.group(1)) if found else 0.0)
    assert totals == {30.0}


_COUNT_ACROSS_A_FORK = """
import os
from prometheus_client import CollectorRegistry, multiprocess
from app import metrics, scope

with scope.serving("default"):
    metrics.PUSHES.labels("text", "reply").inc()  # the series is made before the fork
    child = os.fork()
    if child == 0:
        metrics.PUSHES.labels("text", "reply").inc(2)
        metrics.HANDLERS_RUNNING.inc()
        os._exit(0)
    os.waitpid(child, 0)
registry = CollectorRegistry()
multiprocess.MultiProcessCollector(registry)
value = registry.get_sample_value(
    "wx_pushes_total", {"account": "default", "type": "text", "outcome": "reply"}
)
print(child, value)
"""


def test_series_made_before_a_fork_count_in_the_childs_own_file(tmp_path: Path) -> None:
    # As a gunicorn master that imported the app before forking workers: the series the
    # master made are kept, and a worker counting on them must write to its own file.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    run = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_COUNT_ACROSS_A_FORK)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    child, value = run.stdout.split()
    assert float(value) == 3.0
    assert (tmp_path / f"counter_{child}.db").exists()
    assert (tmp_path / f"gauge_livesum_{child}.db").exists()


def test_healthz_reports_a_sqlite_file_deleted_under_the_service(
    settings: Settings, tmp_path: Path
) -> None:
    # Pooled connections kept the deleted inode while new ones created an empty file: the store
    # was split for good ("no such table") and /healthz still said ok.
    path = tmp_path / "state" / "ledger.db"
    app = create_app(dataclasses.replace(settings, store_url=f"sqlite:///{path}"))
    wechat = WeChatClient(app)
    try:
        assert wechat.text("before").reply is not None
        for leftover in path.parent.iterdir():
            leftover.unlink()
        assert wechat.text("after").reply is not None
        response = app.test_client().get("/healthz")
        assert response.status_code == 503
        assert "deleted or replaced" in response.json["store"]
        assert path.exists()
    finally:
        app.extensions["wechat"].close()


def test_types_sent_on_the_wire_cannot_grow_the_series(app: Flask, client: FlaskClient) -> None:
    # The label was MsgType (or Event) as received: any 1-128 characters, a new series each,
    # kept for the life of the worker and printed by /metrics.
    wechat = WeChatClient(app)
    before = sample(client, "wx_pushes_total", type="unknown", outcome="success")
    before_events = sample(client, "wx_pushes_total", type="event:unknown", outcome="success")
    for n in range(5):
        wechat.message(f"madeup{n}")
        wechat.event(f"MADEUP_EVENT_{n}")
    wechat.event("CLICK", "MENU_HELP")
    text = client.get("/metrics").get_data(as_text=True)
    assert "madeup" not in text and "MADEUP" not in text
    assert sample(client, "wx_pushes_total", type="unknown", outcome="success") == before + 5
    after_events = sample(client, "wx_pushes_total", type="event:unknown", outcome="success")
    assert after_events == before_events + 5
    assert 'type="event:CLICK"' in text
