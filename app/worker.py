"""gunicorn's gevent worker, patched so that handlers keep real threads.

gunicorn's own ``-k gevent`` calls ``monkey.patch_all()``, which also swaps ``threading``'s
locks, events and ``queue.SimpleQueue`` for gevent's. Those belong to one native thread's hub:
shared by the native threads handlers run on (:mod:`app.runner`), a contended lock never wakes
its waiter. A module-level ``threading.Lock``, the lock inside a ``logging`` handler, the
connection pool of an ``httpx.Client`` two handlers share: each would hang a handler now and
then, under load.

This worker patches everything the request side needs to wait cooperatively (sockets, DNS,
``time.sleep``, ``select``, ``ssl``, ``subprocess``, signals) and leaves threads, their
primitives and ``queue`` native. Requests are still greenlets, thousands of them cheap; the
service waits for handlers through gevent's thread pool, whose futures yield to the hub, and
never holds a lock across a cooperative wait. Use it as ``-k app.worker.GeventWorker``, the
default of ``gunicorn.conf.py``.
"""

from __future__ import annotations

from typing import Any

from gevent import monkey, socket
from gunicorn.workers.ggevent import GeventWorker as _GunicornGeventWorker


def patch_for_handlers() -> None:
    """Make blocking I/O cooperative, and keep threads, their locks and queues native."""
    monkey.patch_all(thread=False, queue=False)


class GeventWorker(_GunicornGeventWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's gevent worker with :func:`patch_for_handlers` instead of ``patch_all()``."""

    def patch(self) -> None:
        patch_for_handlers()
        # As gunicorn does: the listening sockets were made before patching.
        listening: list[Any] = self.sockets  # type: ignore[has-type]
        self.sockets = [
            socket.socket(s.FAMILY, socket.SOCK_STREAM, fileno=s.sock.detach()) for s in listening
        ]
