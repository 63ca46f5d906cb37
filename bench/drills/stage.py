"""The stage of one drill: a work directory, the fake WeChat API, the hosts and Redis it runs,
and the moves drills make on them, each noted on a timeline.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from config import load_settings
from tests.fakewechat import FakeWeChat

from .cluster import Host, Redis, alive
from .tally import Runs, Tally, tally
from .wechat import DEADLINE, Load, make_pushes

TOKEN = "drillToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx1a2b3c4d5e6f7a8b"
SECRET = "0123456789abcdef0123456789abcdef"
#: Seconds between the starts of two pushes: 2.5 a second, with about ten attempts waiting on
#: handlers at any time; a steady load two workers serve without queueing, so what a drill
#: sees comes from its fault, not from overload.
INTERVAL = 0.4
#: The longest a drill waits, after the last attempt, for handlers still running.
SETTLE = 30.0
#: Log lines worth a count in the details: what the service says about its faults.
LOG_SIGNS = {
    "DEGRADED": "degraded",
    "runs the handler again": "take-overs",
    "stopped after its answer": "owed replies run again",
    "internal error": "internal errors",
    "not delivered": "late replies not delivered",
    "Traceback": "tracebacks",
}


class Stage:
    """Everything one drill runs on; the context manager tears it all down."""

    def __init__(self, name: str, *, keep: bool = False) -> None:
        self.name = name
        self._keep = keep
        self.workdir = Path(tempfile.mkdtemp(prefix=f"wx-drill-{name}-"))
        self.runs_file = self.workdir / "runs.log"
        self.api = FakeWeChat(APPID, SECRET)
        self.hosts: list[Host] = []
        self.redis_servers: list[Redis] = []
        self.timeline: list[str] = []
        self._clock = time.monotonic()

    def __enter__(self) -> Stage:
        self.api.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for host in self.hosts:
            host.stop()
        for redis in self.redis_servers:
            redis.close()
        self.api.close()
        if self._keep:
            print(f"  {self.name}: logs and files kept in {self.workdir}")
        else:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- setting up --------------------------------------------------------------------------

    def env(self, store_url: str, strategy: str = "retry") -> dict[str, str]:
        """The service's environment: production deadline, the strategy (``retry`` unless a
        drill says), the fake API."""
        return {
            "WX_TOKEN": TOKEN,
            "WX_APPID": APPID,
            "WX_AES_KEY": AES_KEY,
            "WX_APPSECRET": SECRET,
            "WX_API_BASE": self.api.url,
            "WX_HANDLERS": "tests.drill_handlers",
            "WX_STORE_URL": store_url,
            "WX_DEADLINE": str(DEADLINE),
            "WX_SLOW_STRATEGY": strategy,
            "WX_DRILL_RUNS": str(self.runs_file),
        }

    @property
    def sqlite_path(self) -> Path:
        return self.workdir / "instance" / "wx-push.db"

    def sqlite_url(self) -> str:
        return f"sqlite:///{self.sqlite_path}"

    def redis(self) -> Redis:
        redis = Redis()
        self.redis_servers.append(redis)
        return redis

    def host(self, name: str, store_url: str, *, strategy: str = "retry") -> Host:
        host = Host(name, self.env(store_url, strategy), self.workdir)
        self.hosts.append(host)
        host.start()
        return host

    def load(self, count: int, urls: Sequence[str]) -> Load:
        """Start ``count`` pushes against ``urls`` (see :class:`Load`)."""
        settings = load_settings(self.env("memory://"), dotenv=False)
        load = Load(make_pushes(settings, self.name, count), urls, INTERVAL).start()
        self._clock = load.started
        return load

    # -- moves -------------------------------------------------------------------------------

    def note(self, text: str) -> None:
        self.timeline.append(f"{time.monotonic() - self._clock:.1f} s {text}")

    def busy_worker(self, host: Host, timeout: float = 5.0) -> int | None:
        """Wait up to ``timeout`` for a worker of ``host`` running a handler; the busiest."""
        deadline = time.monotonic() + timeout
        while True:
            workers = set(host.workers())
            running = [pid for _, pid in Runs.read(self.runs_file).unfinished() if pid in workers]
            if running:
                return max(set(running), key=running.count)
            if time.monotonic() > deadline:
                self.note(f"no handler running on host {host.name} within {timeout:g} s")
                return None
            time.sleep(0.05)

    def kill_worker(self, host: Host) -> None:
        """kill -9 the busiest worker of ``host`` (any worker if none is busy)."""
        pid = self.busy_worker(host) or host.workers()[0]
        os.kill(pid, signal.SIGKILL)
        self.note(f"kill -9 worker {pid} of host {host.name}")

    def pause(self, seconds: float, why: str) -> None:
        time.sleep(seconds)
        self.note(f"{seconds:g} s later: {why}")

    # -- the end -----------------------------------------------------------------------------

    def finish(self, load: Load) -> Tally:
        """Wait for the last attempt and the handlers, stop the hosts gracefully (which
        delivers what is still owed), and count."""
        load.wait()
        deadline = time.monotonic() + SETTLE
        while any(alive(pid) for _, pid in Runs.read(self.runs_file).unfinished()):
            if time.monotonic() > deadline:
                self.note(f"handlers still running {SETTLE:g} s after the last attempt")
                break
            time.sleep(0.1)
        for host in self.hosts:
            host.stop()
        result = tally(self.name, load.pushes, Runs.read(self.runs_file), self.api.messages)
        result.notes += self._log_signs() + self.timeline
        if self._keep:
            self._write_story(load)
        return result

    def _write_story(self, load: Load) -> None:
        """Write every attempt, and the timeline, beside the logs, for a closer look."""
        with open(self.workdir / "attempts.txt", "w", encoding="utf-8") as story:
            for push in load.pushes:
                for attempt in push.attempts:
                    story.write(
                        f"{push.tag} {push.user} handler {push.handler_seconds:g} s: attempt"
                        f" {attempt.number} at {attempt.at:.2f} s to {attempt.host}:"
                        f" {attempt.outcome} after {attempt.seconds:.2f} s\n"
                    )
            for message in self.api.messages:
                story.write(f"late to {message['touser']}: {message.get('text')}\n")
            story.writelines(line + "\n" for line in self.timeline)

    def _log_signs(self) -> list[str]:
        text = "".join(host.log.read_text(errors="replace") for host in self.hosts)
        return [f"{label} {text.count(sign)}" for sign, label in LOG_SIGNS.items() if sign in text]
