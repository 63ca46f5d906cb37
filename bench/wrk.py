"""Closed-loop load with wrk: every connection sends its next push as soon as one is answered.

wrk (installed as /usr/bin/wrk) sends pre-built pushes from a file through
bench/wrk_pushes.lua, so the load generator spends no time signing or encrypting and every
push is one of a kind. Its latencies are those of a closed loop: a stalled server also stalls
the sender, so they understate queueing (bench/openloop.py measures that).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk_pushes.lua"


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    #: Socket errors and non-2xx/3xx answers, by wrk's kind.
    errors: dict[str, int]
    #: How often a wrk thread ran out of pushes and started over (0: every push unique).
    wrapped: int

    @property
    def rate(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds


def write_requests(requests: Sequence[bytes], path: Path) -> None:
    """Write raw requests in the length-prefixed form wrk_pushes.lua reads."""
    with open(path, "wb") as out:
        for raw in requests:
            out.write(b"%d\n" % len(raw))
            out.write(raw)


def run(url: str, requests: Sequence[bytes], *, connections: int, seconds: int) -> WrkResult:
    """Run wrk for ``seconds`` (whole: wrk takes no fractions) with ``connections`` open,
    sending ``requests`` in turn.

    :raises RuntimeError: wrk failed or printed no summary.
    """
    threads = min(2, connections)
    with tempfile.TemporaryDirectory(prefix="wx-bench-wrk-") as tmp:
        path = Path(tmp) / "pushes.bin"
        write_requests(requests, path)
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s"]
        command += ["--timeout", "10s", "-s", str(SCRIPT), url, "--", str(path), str(threads)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("wrk-json "):
            data = json.loads(line.removeprefix("wrk-json "))
            break
    else:
        output = (done.stdout + done.stderr).strip()[-2000:]
        raise RuntimeError(f"wrk printed no summary (exit {done.returncode}): {output}")
    kinds = ("connect", "read", "write", "status", "timeout")
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors={kind: data[kind] for kind in kinds if data[kind]},
        wrapped=data["wrapped"],
    )
