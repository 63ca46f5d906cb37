"""Production defaults for ``gunicorn wsgi:app``; any of them can be overridden on the command
line or in GUNICORN_CMD_ARGS.

WeChat drops a connection after 5 seconds, so nothing here lets a request live much longer: the
service answers within WX_DEADLINE itself and gunicorn's timeout is only the backstop for a
worker that stopped responding altogether.
"""

import os
import tempfile

#: Workers write their Prometheus samples here so /metrics can sum them (app/monitoring.py);
#: a fresh directory per start, so counts of an earlier run never leak in.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="wx-push-metrics-"))

from gevent import monkey  # noqa: E402
from gevent import socket as cooperative_socket  # noqa: E402
from gunicorn.workers.ggevent import GeventWorker as GunicornGeventWorker  # noqa: E402
from prometheus_client import multiprocess  # noqa: E402  (reads the directory set above)

#: Listen on loopback only: nginx (deploy/nginx.conf) terminates TLS on 443 in front.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
#: Two processes per core is plenty: pushes are small and handlers mostly wait on I/O.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))


class GeventWorker(GunicornGeventWorker):
    """gunicorn's gevent worker, patched so that handlers keep real threads.

    gunicorn's own ``-k gevent`` calls ``monkey.patch_all()``, which also swaps threading's locks,
    events and ``queue.SimpleQueue`` for gevent's. Those belong to one native thread's hub: shared
    by the native threads handlers run on (app/lifecycle/runner.py), a contended one never wakes its
    waiter. A module-level ``threading.Lock``, the lock inside a ``logging`` handler, the connection
    pool of an ``httpx.Client`` two handlers share: each would now and then hang a handler for good.
    This worker makes sockets, DNS, ``time.sleep``, ``select``, ``ssl``, ``subprocess`` and signals
    cooperative, and leaves threads, their locks and ``queue`` native; the service waits for
    handlers without blocking the hub (``HandlerPool.wait``).

    It lives here, not in the ``app`` package, because gunicorn's master loads the worker class:
    importing ``app`` there would import what it uses (ssl among it) before the workers patch.
    """

    def patch(self):  # type: ignore[no-untyped-def]
        monkey.patch_all(thread=False, queue=False)
        # As gunicorn does: the listening sockets were made before patching.
        self.sockets = [
            cooperative_socket.socket(
                s.FAMILY, cooperative_socket.SOCK_STREAM, fileno=s.sock.detach()
            )
            for s in self.sockets
        ]


#: gevent: every connection is a greenlet, so attempts waiting for slow handlers (a burst of
#: LLM conversations) and clients that send slowly cost kilobytes, not threads; handlers run on
#: native threads all the same (WX_HANDLER_THREADS, app/lifecycle/runner.py). The worker is the
#: GeventWorker above, which leaves threading native. Measured against gthread in README's
#: architecture section. GUNICORN_WORKER_CLASS=gthread (or any gunicorn worker) overrides it.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS") or GeventWorker
#: Connections one worker holds at once: WeChat's pushes plus retries waiting on handlers.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "2000"))
#: For GUNICORN_WORKER_CLASS=gthread only.
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
#: Backstop for a stuck worker; the service itself answers within WX_DEADLINE.
timeout = 30
graceful_timeout = 20
#: nginx keeps upstream connections alive; WeChat itself opens a new one per push.
keepalive = 5
#: Recycle workers now and then so a leak in a user's handler cannot grow forever.
max_requests = 10000
max_requests_jitter = 1000
#: Trust X-Forwarded-* only from the local nginx.
forwarded_allow_ips = "127.0.0.1,::1"
#: No gunicornc control socket: nothing uses it, and every instance on a host would share
#: one default path ($HOME/.gunicorn/gunicorn.ctl).
control_socket_disable = True
#: No access log of gunicorn's own: the service logs one line per push (with "lapsed" where
#: gunicorn would say 503 for a connection WeChat saw closed) and one per refusal, and nginx
#: logs every request; a second line per push cost ~14 % of the throughput. GUNICORN_ACCESS_LOG=-
#: turns it on, to stdout.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
#: The path without its query: a signed query can be replayed within the timestamp window.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'


def _accounts(worker):  # type: ignore[no-untyped-def]
    """The worker's ``app.extensions["wechat"]``, or None.

    A worker whose app failed to load (a broken WX_HANDLERS module) has no ``wsgi`` and
    nothing to start or finish; gunicorn has already logged why it failed.
    """
    app = getattr(worker, "wsgi", None)
    return getattr(app, "extensions", {}).get("wechat")


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Start the service's periodic work in every worker, even one no push has reached yet:
    it adopts the replies owed late by a worker that died (app/lifecycle/outbox.py)."""
    accounts = _accounts(worker)
    if accounts is not None:
        accounts.start()


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    """Let handlers still running finish and deliver what users are owed before exiting."""
    accounts = _accounts(worker)
    if accounts is not None:
        accounts.close()


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Fold a finished worker's live gauges out of /metrics (counters stay summed)."""
    multiprocess.mark_process_dead(worker.pid)
