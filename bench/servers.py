"""The servers under test: gunicorn on loopback, with its worker processes in view.

Every server is started the way its users start it. Only the port and the worker count are
the same for all; wx-push reads gunicorn.conf.py (gthread, access log, metrics) and the apps it
is compared with take gunicorn's defaults (sync workers, no access log), as their users'
``gunicorn -w N app:app`` does.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import NO_ANSWER, ROOT, free_port, request, wait_for_port


@dataclass(frozen=True)
class Server:
    """A running gunicorn: its address and its master process."""

    host: str
    master: int

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def workers(self) -> list[int]:
        """The PIDs of the worker processes now alive (children of the master)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = _stat(int(entry.name))
                if fields and int(fields[1]) == self.master:
                    found.append(int(entry.name))
        return sorted(found)

    def cpu_seconds(self) -> float:
        """CPU time (user and system) every worker of this server has used so far, from /proc.

        Per push this is the cost that a busy machine cannot distort much: other processes
        stretch a push's latency, not the CPU it takes. Workers that exited (recycled, or
        replaced after a crash) count through the master's ``cutime``/``cstime``, so the figure
        only grows; summing the live workers alone went down when one was replaced.
        """
        master = _stat(self.master)
        ticks = int(master[13]) + int(master[14]) if master else 0  # reaped children
        for pid in self.workers():
            fields = _stat(pid)
            if fields:
                ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def context_switches(self) -> dict[str, int]:
        """Context switches, voluntary and not, so far, of every thread of the live workers,
        by thread (``<pid>/<tid>``); :meth:`switches_since` turns two of these into a count.

        Per push this tells how often a push hands the CPU from one thread to another (to a
        handler thread and back, or to whichever thread takes the GIL when one lets it go):
        a count, which a noisy machine changes far less than it changes CPU time.
        """
        counts = {}
        for pid in self.workers():
            for status in Path(f"/proc/{pid}/task").glob("*/status"):
                try:
                    lines = status.read_text().splitlines()
                except OSError:
                    continue
                counts[f"{pid}/{status.parent.name}"] = sum(
                    int(line.split(":")[1])
                    for line in lines
                    if line.split(":")[0].endswith("ctxt_switches")
                )
        return counts

    def switches_since(self, before: dict[str, int]) -> int:
        """The context switches the workers' threads made since ``before``.

        A thread that ended meanwhile (a worker retired after ``max_requests``, say) takes its
        count with it, as /proc keeps none for it: its switches since ``before`` go uncounted,
        rather than the total going down by all it ever made.
        """
        return sum(
            count - before.get(thread, 0) for thread, count in self.context_switches().items()
        )

    def memory(self, pids: list[int] | None = None) -> dict[int, tuple[int, int]]:
        """Each worker's resident memory in KiB and its thread count, from /proc.

        :param pids: the workers to look at (default: those alive now).
        """
        sizes = {}
        for pid in self.workers() if pids is None else pids:
            try:
                lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in lines if ":" in line)
            sizes[pid] = (int(fields["VmRSS"].split()[0]), int(fields["Threads"]))
        return sizes


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first); [] if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    # The command name may hold spaces and parentheses; the fields after its last ")" are fixed.
    return stat.rsplit(")", 1)[1].split()


def raise_open_files_limit() -> int:
    """Raise this process's open-files limit to its hard limit; servers started later inherit it.

    :return: the new limit.
    """
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@contextmanager
def gunicorn(
    app: str,
    *,
    workers: int,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    config: bool = False,
    log: Path | None = None,
) -> Iterator[Server]:
    """Run gunicorn for ``app`` on a free loopback port until the block ends.

    :param app: the WSGI app, ``module:attribute``, importable from the repository.
    :param env: the environment besides PATH and HOME (no ``.env`` is read).
    :param args: more gunicorn arguments, after the others (so they win).
    :param config: read gunicorn.conf.py, as wx-push's users do.
    :param log: where gunicorn's and the app's output goes (discarded by default).
    """
    port = free_port()
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "WX_DOTENV": "/nonexistent/.env",
        **(env or {}),
    }
    command = [sys.executable, "-m", "gunicorn"]
    command += ["-c", "gunicorn.conf.py"] if config else ["--no-control-socket"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers), *args, app]
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        command, cwd=ROOT, env=environ, stdout=output, stderr=output, start_new_session=True
    )
    server = Server(f"127.0.0.1:{port}", process.pid)
    try:
        wait_for_port(port, process, timeout=30)
        # The master listens before its workers have booted: wait until all are answering.
        deadline = time.monotonic() + 30
        while len(server.workers()) < workers or request("GET", server.url)[0] == NO_ANSWER:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{app}: workers did not boot within 30 s (see {log})")
            time.sleep(0.1)
        time.sleep(0.5)
        yield server
    finally:
        stop(process)
        if log:
            output.close()  # type: ignore[union-attr]


def stop(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a server started in a session of its own: SIGTERM, then SIGKILL to its group.

    Benchmarks leave handlers sleeping or hung, which a graceful shutdown would wait for. The
    master is reaped only at the end, so until then its process group is this server's.
    """
    process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not _exited(process.pid):
        time.sleep(0.05)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # nothing left in the group
        pass
    process.wait()


def _exited(pid: int) -> bool:
    """Whether the unreaped child ``pid`` has exited (is a zombie)."""
    return _stat(pid)[:1] == ["Z"]


#: What a server's log should not hold during a benchmark, and the text that shows it.
PROBLEMS = {
    "tracebacks": "Traceback",
    "internal errors": "internal error",
    "handler failures": "failed on",
    "store degraded": "DEGRADED",
    "workers timed out": "WORKER TIMEOUT",
    "workers booted": "Booting worker",
}


#: What gunicorn logs when a worker retires after ``max_requests`` (gunicorn.conf.py), by design.
RECYCLED = "Autorestarting worker"


def log_problems(log: Path, *, workers: int) -> dict[str, int]:
    """Count what went wrong in a server's log; workers booted counts only the restarts that
    were not a worker retiring after ``max_requests``."""
    text = log.read_text(errors="replace")
    found = {name: text.count(word) for name, word in PROBLEMS.items()}
    restarts = found["workers booted"] - workers - text.count(RECYCLED)
    found["workers booted"] = max(0, restarts)
    return {name: count for name, count in found.items() if count}
