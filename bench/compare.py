"""Side-by-side cost of answering a push: a bare Flask endpoint, wechatpy, and this service.

All three run in this one process, on the same pushes, through Flask's test client (no network,
so the figures are the WSGI application's own cost), interleaved round by round so that a noisy
machine slows all of them alike. The pushes are a user's text message in safe mode (AES), each
with its own MsgId, answered with an encrypted text echo; the bare endpoint answers "success"
after reading the body, the floor any Flask service pays. The apps are those that
bench/throughput.py runs under gunicorn (bench/floor_app.py, bench/wechatpy_app.py).

    .venv/bin/python bench/compare.py [--pushes 2000] [--rounds 5] [--store URL]

This service keeps its ledger in ``memory://`` unless ``--store`` names another store (a
``sqlite:///`` file, the default of a real deployment, or ``redis://``), opened as the service
opens it, with the host's fallback behind it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import sys
import time
from pathlib import Path

from flask import Flask

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import create_app  # noqa: E402
from bench import floor_app, wechatpy_app  # noqa: E402
from bench.pushes import SETTINGS, builder  # noqa: E402


def measure(app: Flask, pushes: list[tuple[dict[str, str], bytes]], check: bytes) -> list[float]:
    """Seconds per push, each answered through the test client."""
    client = app.test_client()
    took = []
    for query, body in pushes:
        started = time.perf_counter()
        response = client.post("/wx", query_string=query, data=body)
        took.append(time.perf_counter() - started)
        if response.status_code != 200 or check not in response.data:
            raise SystemExit(f"{app.name}: unexpected answer {response.status_code}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=2000, help="pushes per round and app")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument(
        "--store", default=SETTINGS.store_url, help="this service's store URL (memory://)"
    )
    options = parser.parse_args()

    ours = create_app(dataclasses.replace(SETTINGS, handler_threads=4, store_url=options.store))
    # One line per push to stderr would measure the terminal, not the service.
    logging.getLogger("app").setLevel(logging.WARNING)
    contenders: dict[str, tuple[Flask, bytes]] = {
        "bare Flask (success, no parsing)": (floor_app.app, b"success"),
        "wechatpy 1.8 (decrypt, echo, encrypt)": (wechatpy_app.app, b"<Encrypt>"),
        "wx-push (same, + ledger, deadline)": (ours, b"<Encrypt>"),
    }
    wechat = builder()
    timings: dict[str, list[float]] = {name: [] for name in contenders}
    for round_number in range(options.rounds):
        for name, (app, check) in contenders.items():
            pushes = [
                wechat.build(wechat.complete({"MsgType": "text", "Content": f"你好 {n}"}))
                for n in range(options.pushes)
            ]
            timings[name] += measure(app, pushes, check)
        print(f"round {round_number + 1}/{options.rounds} done", file=sys.stderr)
    ours.extensions["wechat"].close()

    print(f"{'endpoint':40} {'pushes':>7} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, took in timings.items():
        ordered = sorted(took)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        rate = len(took) / sum(took)
        median = statistics.median(took) * 1000
        print(f"{name:40} {len(took):>7} {rate:>8.0f} {median:>8.3f} {p99 * 1000:>8.3f}")


if __name__ == "__main__":
    main()
