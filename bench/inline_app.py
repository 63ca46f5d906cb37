"""wx-push with every handler run on the request's own greenlet: a measuring device, not a design.

bench/breakdown.py serves this beside ``wsgi:app`` to price the crossing to a handler thread
and back, the one thing it changes: each handler runs at once, where the pool would have
queued it, and the attempt finds its run finished. The rest of the life of a push (the claim,
the lease, the wait, the answer's record) goes on as in the service. Never serve it: a handler
that blocks or burns CPU here holds up every push of its worker, which is why the service runs
handlers on native threads (app/lifecycle/runner.py).

    gunicorn -c gunicorn.conf.py bench.inline_app:app
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from app.lifecycle.runner import HandlerPool
from app.lifecycle.runs import HandlerRun

_T = TypeVar("_T")


def _run_here(self: HandlerPool, work: Callable[[], _T]) -> HandlerRun[_T]:
    """Run ``work`` on the calling greenlet; the run handed back is already finished."""
    return HandlerRun.finished(work())


HandlerPool.run = _run_here  # type: ignore[method-assign]

from wsgi import app  # noqa: E402  (made after the patch, as gunicorn's worker imports it)

__all__ = ["app"]
