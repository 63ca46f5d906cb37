"""Leases: a push stays claimed only while the process running its handler is alive.

The first attempt's claim is what keeps every retry from running the handler again. If the
process holding that claim dies (killed by the OOM killer, ``kill -9``, a crashed host), nobody
would ever produce the result and the push would be lost. So a claim comes with a lease in the
ledger, a few seconds long, that a thread of the holding process renews every second while the
handler is queued or running. A retry that finds the lease gone takes the push over and runs the
handler itself (:meth:`.service.WeChatService.answer`).

A slow handler never loses its lease: renewing runs on a thread of its own, not the handler's.
Only a process that stops altogether, or a store that cannot be written for longer than the
lease, lets a retry run the handler a second time; that is the trade for losing nothing.
"""

from __future__ import annotations

import logging
import threading

from .. import metrics
from ..wechat.identity import PushKey
from .clock import SYSTEM_CLOCK, Clock
from .ledger import Ledger

logger = logging.getLogger(__name__)

#: Seconds after which a run still going is logged as probably hung: far past any deadline,
#: and past what WeChat's retries and the customer-service window make useful.
HUNG_AFTER = 60.0


class LeaseKeeper:
    """Renews the leases of the pushes this process runs, from one daemon thread, and names the
    runs that seem hung.

    A handler that never returns keeps its native thread (at most WX_HANDLER_THREADS run at
    once, so hung runs are bounded) and its lease; after :data:`HUNG_AFTER` seconds it is
    logged once by push and counted in ``wx_handlers_hung_total``. ``wx_handlers_running``
    counts the runs in progress.
    """

    def __init__(
        self,
        ledger: Ledger,
        *,
        interval: float,
        hung_after: float = HUNG_AFTER,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """:param clock: what a run's start and claim are timed by; renewing keeps to real
        seconds, as the store's expiry of a lease does."""
        self._ledger = ledger
        self._clock = clock
        self._interval = interval
        self._hung_after = hung_after
        # Plain dict and set, whose single operations are atomic: hold() and release() are on
        # the path of every push, release() on the handler's thread as it finishes.
        self._held: dict[PushKey, tuple[float, float]] = {}  # monotonic start, Unix claim
        self._reported: set[PushKey] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def hold(self, push_key: PushKey) -> None:
        """Keep renewing the lease of ``push_key`` until :meth:`release`.

        The thread starts on first use, inside the worker process: a thread started before
        gunicorn forks would not exist in the workers.
        """
        self._held[push_key] = (self._clock.monotonic(), self._clock.time())
        metrics.HANDLERS_RUNNING.inc()
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._renew, name="wx-lease", daemon=True
                    )
                    self._thread.start()

    def release(self, push_key: PushKey) -> None:
        """Stop renewing; the lease runs out on its own. Releasing twice is harmless."""
        if self._held.pop(push_key, None) is not None:
            metrics.HANDLERS_RUNNING.dec()
        self._reported.discard(push_key)

    def close(self) -> None:
        """Stop the renewing thread (after the handlers have finished)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval * 2)

    def _renew(self) -> None:
        while not self._stop.wait(self._interval):
            now = self._clock.monotonic()
            for push_key, (started, claimed_at) in list(self._held.items()):
                try:
                    self._ledger.renew(push_key, claimed_at=claimed_at)
                except Exception as e:  # a store hiccup must not end renewing for the others
                    logger.warning("lease of a push not renewed: %s", e)
                if now - started >= self._hung_after and push_key not in self._reported:
                    self._reported.add(push_key)
                    metrics.HANDLERS_HUNG.inc()
                    logger.warning(
                        "handler for %s still running after %.0f s: hung? It keeps one of the"
                        " WX_HANDLER_THREADS threads until it returns",
                        push_key,
                        now - started,
                    )
