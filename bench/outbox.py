"""What keeping a burst of owed replies costs one process (app/lifecycle/outbox.py).

With WX_SLOW_STRATEGY=customer_service a burst of slow conversations answers every push
"success" at its first deadline, and each push is then kept in the store until its reply is
delivered. This owes ``--pushes`` replies from 16 threads at once (as the service's background
threads do), then settles them all, and prints the CPU time and wall time of each half, on a
SQLite file in a temporary directory or on the store ``--store`` names.

    .venv/bin/python bench/outbox.py [--pushes 500] [--store URL]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.lifecycle.outbox import Outbox  # noqa: E402
from app.store import open_store  # noqa: E402
from app.wechat.codec import BodyFormat  # noqa: E402
from app.wechat.envelope import Mode, Push  # noqa: E402


def push(n: int) -> Push:
    """A user's text of about 600 bytes, as the outbox keeps it."""
    fields = {
        "ToUserName": "gh_0123456789ab",
        "FromUserName": f"o6_bmjrPTlm6_2sgVt7hMZOPfL{n:04d}",
        "CreateTime": "1700000000",
        "MsgType": "text",
        "Content": "帮我写一段关于秋天的文字" * 16,
        "MsgId": str(23000000000000000 + n),
    }
    return Push(fields, Mode.SAFE, BodyFormat.XML, 1700000000, f"{n:010d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=500, help="replies owed at once (500)")
    parser.add_argument("--store", default="", help="a store URL (default: a SQLite file)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wx-bench-outbox-") as tmp:
        store = open_store(options.store or f"sqlite:///{tmp}/outbox.db")
        outbox = Outbox(store, namespace="bench", ttl=3600)
        pushes = [push(n) for n in range(options.pushes)]
        for label, change in (
            ("owe", lambda n: outbox.owe(f"k{n}", pushes[n])),
            ("settle", lambda n: outbox.settle(f"k{n}")),
        ):
            cpu, wall = time.process_time(), time.perf_counter()
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(change, range(options.pushes)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(f"{label} x{options.pushes}: CPU {cpu:.2f} s, wall {wall:.2f} s")
        store.close()


if __name__ == "__main__":
    main()
