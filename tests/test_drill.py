"""The fault drill (bench/drill.py) runs end to end and accounts for every push it sends.

Only the smallest drill, with a few pushes: the full drill takes minutes and is timing-bound
(``make drill``). Nothing here asserts a latency or the drill's verdict, which depend on the
machine's load; only that each push sent is counted in a consistent line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.servers import ROOT

LINE = re.compile(
    r"^kill-worker\s+(?P<pushes>\d+)\s+(?P<answered>\d+)"
    r" \(#1:(?P<first>\d+) #2:(?P<second>\d+) #3:(?P<third>\d+)\s*\)"
    r"\s+(?P<once>\d+)\s+(?P<twice>\d+)\s+(?P<lost>\d+)\s+\d+\.\d\d s\s+(ok|MISSED)$"
)


def test_a_worker_killed_under_retries_is_drilled_and_every_push_counted(tmp_path: Path) -> None:
    drill = subprocess.run(
        [sys.executable, "bench/drill.py", "--only", "kill-worker", "--pushes", "4", "--no-fail"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # the drill's work directory goes there
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert drill.returncode == 0, drill.stderr
    lines = drill.stdout.splitlines()
    assert lines[0].split()[:2] == ["drill", "pushes"]
    match = LINE.match(lines[1])
    assert match is not None, drill.stdout
    counts = {name: int(value) for name, value in match.groupdict().items()}
    assert counts["pushes"] == 4
    assert counts["first"] + counts["second"] + counts["third"] == counts["answered"] <= 4
    assert counts["once"] + counts["lost"] <= 4
    assert counts["twice"] <= 4
    assert lines[2].startswith("0 of 1 drills missed") or lines[2].startswith("1 of 1 drills")
