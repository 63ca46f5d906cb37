"""Leases: a push stays claimed only while the process running its handler is alive.

The first attempt's claim is what keeps every retry from running the handler again. If the
process holding that claim dies (killed by the OOM killer, ``kill -9``, a crashed host), nobody
would ever produce the result and the push would be lost. So a claim comes with a lease in the
ledger, a few seconds long, that a thread of the holding process renews every second while the
handler is queued or running. A retry that finds the lease gone takes the push over and runs the
handler itself (:meth:`app.service.WeChatService.answer`).

A slow handler never loses its lease: renewing runs on a thread of its own, not the handler's.
Only a process that stops altogether, or a store that cannot be written for longer than the
lease, lets a retry run the handler a second time; that is the trade for losing nothing.
"""

from __future__ import annotations

import logging
import threading

from .ledger import Ledger
from .wechat.identity import PushKey

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Renews the leases of the pushes this process holds, from one daemon thread."""

    def __init__(self, ledger: Ledger, *, interval: float) -> None:
        self._ledger = ledger
        self._interval = interval
        self._held: set[PushKey] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def hold(self, push_key: PushKey) -> None:
        """Keep renewing the lease of ``push_key`` until :meth:`release`.

        The thread starts on first use, inside the worker process: a thread started before
        gunicorn forks would not exist in the workers.
        """
        with self._lock:
            self._held.add(push_key)
            if self._thread is None:
                self._thread = threading.Thread(target=self._renew, name="wx-lease", daemon=True)
                self._thread.start()

    def release(self, push_key: PushKey) -> None:
        """Stop renewing; the lease runs out on its own, after the result is recorded."""
        with self._lock:
            self._held.discard(push_key)

    def close(self) -> None:
        """Stop the renewing thread (after the handlers have finished)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._interval * 2)

    def _renew(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                held = list(self._held)
            for push_key in held:
                try:
                    self._ledger.renew(push_key)
                except Exception as e:  # a store hiccup must not end renewing for the others
                    logger.warning("lease of a push not renewed: %s", e)
