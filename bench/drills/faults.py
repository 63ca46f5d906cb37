"""The drills: each starts the service, sends the load, does its damage while handlers run,
and counts. Every drill takes the stage and the number of pushes and returns its tally.

Faults land at a fraction of the load, once a handler is running, so they hit pushes
mid-handler. Supervisors are played as deploy/wx-push.service configures them: gunicorn's
master replaces a killed worker, a killed host starts again 2 s later (RestartSec=2), a killed
Redis is started again, empty, 8 s later.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from .stage import Stage
from .tally import Tally

#: Seconds Redis stays dead or frozen.
REDIS_OUTAGE = 8.0
#: systemd's RestartSec in deploy/wx-push.service.
RESTART_AFTER = 2.0


def kill_worker(stage: Stage, count: int) -> Tally:
    """kill -9 a worker running handlers, twice; retries must take its pushes over."""
    host = stage.host("a", stage.sqlite_url())
    load = stage.load(count, [host.url])
    for fraction in (0.3, 0.65):
        load.wait_until(fraction)
        stage.kill_worker(host)
    return stage.finish(load)


def kill_after_success(stage: Stage, count: int) -> Tally:
    """customer_service strategy: a slow push is answered "success" at its first deadline and
    its handler runs on; kill -9 a worker running such handlers, twice. No retry comes for
    those pushes: another worker must adopt them and send their replies late."""
    host = stage.host("a", stage.sqlite_url(), strategy="customer_service")
    load = stage.load(count, [host.url])
    for fraction in (0.4, 0.75):
        load.wait_until(fraction)
        stage.kill_worker(host)
    return stage.finish(load)


def sigterm(stage: Stage, count: int) -> Tally:
    """SIGTERM the whole gunicorn (graceful shutdown) under load, then start it again."""
    host = stage.host("a", stage.sqlite_url())
    load = stage.load(count, [host.url])
    load.wait_until(0.4)
    stage.busy_worker(host)
    host.signal(signal.SIGTERM)
    stage.note("SIGTERM to the master")
    exited = host.wait_exit(timeout=60)
    stage.note("gunicorn exited" if exited else "gunicorn still running after 60 s")
    host.start()
    stage.note("gunicorn started again")
    return stage.finish(load)


def sighup(stage: Stage, count: int) -> Tally:
    """SIGHUP (reload: new workers, old ones stopped gracefully) three times under load."""
    host = stage.host("a", stage.sqlite_url())
    load = stage.load(count, [host.url])
    for fraction in (0.25, 0.5, 0.75):
        load.wait_until(fraction)
        stage.busy_worker(host)
        host.signal(signal.SIGHUP)
        stage.note("SIGHUP to the master")
    return stage.finish(load)


def redis_killed(stage: Stage, count: int) -> Tally:
    """kill -9 the Redis store mid-run; it comes back empty 8 s later."""
    redis = stage.redis()
    host = stage.host("a", redis.url)
    load = stage.load(count, [host.url])
    load.wait_until(0.3)
    stage.busy_worker(host)
    redis.kill()
    stage.note("kill -9 Redis")
    stage.pause(REDIS_OUTAGE, "Redis started again, empty")
    redis.restart()
    return stage.finish(load)


def redis_hung(stage: Stage, count: int) -> Tally:
    """Freeze the Redis store (SIGSTOP) for 8 s mid-run, then let it go on (SIGCONT)."""
    redis = stage.redis()
    host = stage.host("a", redis.url)
    load = stage.load(count, [host.url])
    load.wait_until(0.3)
    stage.busy_worker(host)
    redis.freeze()
    stage.note("SIGSTOP Redis")
    stage.pause(REDIS_OUTAGE, "SIGCONT Redis")
    redis.thaw()
    return stage.finish(load)


def sqlite_deleted(stage: Stage, count: int) -> Tally:
    """Delete the SQLite store's file mid-run (`rm instance/wx-push.db`)."""
    host = stage.host("a", stage.sqlite_url())
    load = stage.load(count, [host.url])
    load.wait_until(0.3)
    stage.busy_worker(host)
    os.remove(stage.sqlite_path)
    stage.note(f"rm {stage.sqlite_path.name}")
    return stage.finish(load)


def sqlite_read_only(stage: Stage, count: int) -> Tally:
    """Make the SQLite store read-only mid-run: chmod 0444 the file, 0555 its directory."""
    host = stage.host("a", stage.sqlite_url())
    load = stage.load(count, [host.url])
    load.wait_until(0.3)
    stage.busy_worker(host)
    stage.sqlite_path.chmod(0o444)
    stage.sqlite_path.parent.chmod(0o555)
    stage.note("chmod 0444 the file, 0555 its directory")
    return stage.finish(load)


def two_hosts(stage: Stage, count: int) -> Tally:
    """Two gunicorn masters sharing one Redis, WeChat's attempts alternating between them."""
    redis = stage.redis()
    hosts = [stage.host(name, redis.url) for name in ("a", "b")]
    load = stage.load(count, [host.url for host in hosts])
    return stage.finish(load)


def host_killed(stage: Stage, count: int) -> Tally:
    """Two hosts sharing Redis; one is killed (master and workers, SIGKILL) mid-handler and
    started again 2 s later."""
    redis = stage.redis()
    victim, other = (stage.host(name, redis.url) for name in ("a", "b"))
    load = stage.load(count, [victim.url, other.url])
    load.wait_until(0.3)
    stage.busy_worker(victim)
    workers = victim.kill()
    stage.note(f"SIGKILL host a: master and workers {workers}")
    stage.pause(RESTART_AFTER, "host a starting again")
    victim.start()
    stage.note("host a answers again")
    return stage.finish(load)


DRILLS: dict[str, Callable[[Stage, int], Tally]] = {
    "kill-worker": kill_worker,
    "kill-after-success": kill_after_success,
    "sigterm": sigterm,
    "sighup": sighup,
    "redis-killed": redis_killed,
    "redis-hung": redis_hung,
    "sqlite-deleted": sqlite_deleted,
    "sqlite-read-only": sqlite_read_only,
    "two-hosts": two_hosts,
    "host-killed": host_killed,
}

#: Drills that start a Redis of their own.
NEEDS_REDIS = frozenset({"redis-killed", "redis-hung", "two-hosts", "host-killed"})
