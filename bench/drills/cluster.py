"""The machines of a drill: gunicorn instances ("hosts") and a private Redis, each started,
signalled and killed the way an operator, a supervisor or a crash would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.servers import (
    NO_ANSWER,
    ROOT,
    free_port,
    request,
    start_redis,
    wait_for_port,
)


def confined(command: list[str]) -> list[str]:
    """``command`` unable to override file permissions, even when the drill runs as root.

    In production the service runs as a user of its own (deploy/wx-push.service), so a file
    made read-only is read-only to it. Root's CAP_DAC_OVERRIDE would write through ``chmod
    0444``; dropping it from the bounding set makes the permissions apply to root too.
    """
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        return command
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--", *command]


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie nobody reaped yet does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


class Host:
    """One ``gunicorn -c gunicorn.conf.py wsgi:app``, its master and workers, on a fixed port.

    It runs in a session of its own, so killing the host is one ``killpg``: the master and
    every worker die in the same instant, as on a crashed machine, and none of them gets to
    notice the others going.
    """

    def __init__(self, name: str, env: dict[str, str], workdir: Path, *, workers: int = 2):
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = env
        self._workdir = workdir
        self._workers = workers
        self._starts = 0
        self.log = workdir / f"gunicorn-{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start (or start again) on the same port; return once a worker answers."""
        self._starts += 1
        # A fresh metrics directory per start, as gunicorn.conf.py makes one per start.
        metrics = self._workdir / f"metrics-{self.name}-{self._starts}"
        metrics.mkdir()
        # The host's own temporary directory, where the service keeps its fallback store: two
        # hosts on this machine must not share what two machines would not.
        tmp = self._workdir / f"tmp-{self.name}"
        tmp.mkdir(exist_ok=True)
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": "/tmp",
            "WX_DOTENV": "/nonexistent/.env",
            **self._env,
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(self._workers),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            "TMPDIR": str(tmp),
        }
        command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                confined(command),
                cwd=ROOT,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_port(self.port, self.process, timeout=30)
        # The master listens before a worker has booted: wait until one answers.
        deadline = time.monotonic() + 30
        while request("GET", self.url + "/", timeout=30)[0] == NO_ANSWER:
            if time.monotonic() > deadline:
                raise RuntimeError(f"host {self.name}: no worker answered within 30 s")
            time.sleep(0.05)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the master, as ``kill -<sig> $MAINPID`` does."""
        if self.process is not None:
            self.process.send_signal(signum)

    def workers(self) -> list[int]:
        """The process ids of the master's children, the workers, right now."""
        if not self.running or self.process is None:
            return []
        master = self.process.pid
        children = Path(f"/proc/{master}/task/{master}/children")
        return [int(pid) for pid in children.read_text().split()]

    def wait_exit(self, timeout: float) -> bool:
        """Wait for the master to exit; return whether it did within ``timeout``."""
        if self.process is None:
            return True
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> list[int]:
        """SIGKILL the master and every worker at once; return the workers' ids."""
        if self.process is None or not self.running:
            return []
        workers = self.workers()
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return workers

    def stop(self) -> None:
        """Stop gracefully (SIGTERM), as ``systemctl stop`` does; kill after 40 s."""
        if not self.running:
            return
        self.signal(signal.SIGTERM)
        if not self.wait_exit(timeout=40):
            self.kill()


class Redis:
    """A redis-server of the drill's own, keeping nothing on disk, that can be killed, started
    again on the same port (empty, as after a crash), frozen and thawed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = start_redis(self.port)
        wait_for_port(self.port, process, timeout=10)
        return process

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def restart(self) -> None:
        self.process = self._start()

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.thaw()
            self.process.terminate()
            self.process.wait(timeout=10)
