"""Keep answering pushes when the shared store is down, without running a handler twice on a host.

A push that cannot be recorded must still be answered within five seconds, and a dead Redis
must not cost a timeout on every call. So a failed call switches to a fallback store for a few
seconds (a circuit breaker), logs loudly, and tries the shared store again afterwards.

The fallback is one the host's workers share (a SQLite file, :func:`app.store.open_host_store`):
a retry that lands on another worker of the same host still finds the claim of its first
attempt, so a degraded store never runs a handler twice on one host. Only hosts are apart
while it lasts.

Two moments need care, because a push's entries may sit in the other store:

* going down: what was written before the failure is out of reach until the shared store is
  back; the ledger is built so that this can only cause an extra delivery, never a lost one
  (:mod:`app.lifecycle.ledger`);
* coming back: for :data:`REMEMBER` seconds after the last failure, reads and claims consult the
  fallback too, so a push claimed there during the outage is not claimed again in the shared
  store when its retry arrives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .base import Store, StoreError

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Seconds after the last failure during which the fallback's entries still count: longer than
#: WeChat's retries of a push (about 15 s) and a slow handler's late delivery.
REMEMBER = 60.0


class FailoverStore:
    """A :class:`Store` that falls back to ``fallback`` while ``primary`` fails."""

    def __init__(
        self,
        primary: Store,
        fallback: Store | Callable[[], Store],
        *,
        retry_after: float = 5.0,
        fallback_name: str = "a local store",
    ) -> None:
        """:param fallback: the store to fall back to, or a function that opens it when it is
            first needed, so that a healthy service leaves no fallback file behind.
        :param retry_after: seconds to stay on the fallback before trying the primary again.
        :param fallback_name: what the fallback is, for the log line that announces it.
        """
        self._primary = primary
        self._open_fallback: Callable[[], Store]
        if isinstance(fallback, Store):
            self._open_fallback = lambda: fallback
        else:
            self._open_fallback = fallback
        self._opened: Store | None = None
        self._retry_after = retry_after
        self._fallback_name = fallback_name
        self._down_until = 0.0
        self._remember_until = 0.0
        self._lock = threading.Lock()

    @property
    def _fallback(self) -> Store:
        if self._opened is None:
            with self._lock:
                if self._opened is None:
                    self._opened = self._open_fallback()
        return self._opened

    @property
    def degraded(self) -> bool:
        """Whether calls currently go to the fallback store."""
        return time.monotonic() < self._down_until

    def _failed(self, error: StoreError) -> None:
        with self._lock:
            was_up = not self.degraded
            now = time.monotonic()
            self._down_until = now + self._retry_after
            self._remember_until = now + self._retry_after + REMEMBER
        if was_up:
            logger.error(
                "shared store unavailable (%s): DEGRADED to %s; retrying in %.0f s",
                error.message,
                self._fallback_name,
                self._retry_after,
            )

    def _remembering(self) -> bool:
        """Whether the fallback's entries still count: the primary is back after an outage.

        Checked before a function is built to consult them: a healthy service builds none.
        """
        return (
            self._opened is not None and self._down_until <= time.monotonic() < self._remember_until
        )

    def _remembered(self, operation: Callable[[Store], _T]) -> _T | None:
        """What the fallback holds, after :meth:`_remembering`; None on error."""
        try:
            return operation(self._fallback)
        except StoreError:
            return None

    def _call(self, operation: Callable[[Store], _T]) -> _T:
        """Run ``operation`` on the primary, or on the fallback while it is down or when it
        fails now."""
        if self.degraded:
            return operation(self._fallback)
        try:
            return operation(self._primary)
        except StoreError as e:
            self._failed(e)
            return operation(self._fallback)

    def get(self, key: str) -> bytes | None:
        value = self._call(lambda store: store.get(key))
        if value is None and self._remembering():
            value = self._remembered(lambda store: store.get(key))
        return value

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._call(lambda store: store.set(key, value, ttl))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        if self._remembering() and self._remembered(lambda store: store.get(key)) is not None:
            return False
        return self._call(lambda store: store.add(key, value, ttl))

    def add_and_peek(
        self, key: str, value: bytes, ttl: float, peek: str
    ) -> tuple[bool, bytes | None]:
        if self._remembering() and self._remembered(lambda store: store.get(key)) is not None:
            return False, self.get(peek)
        added, peeked = self._call(lambda store: store.add_and_peek(key, value, ttl, peek))
        if peeked is None and self._remembering():
            peeked = self._remembered(lambda store: store.get(peek))
        return added, peeked

    def take(self, key: str) -> bytes | None:
        value = self._call(lambda store: store.take(key))
        if value is None and self._remembering():
            value = self._remembered(lambda store: store.take(key))
        return value

    def delete(self, key: str) -> None:
        self._call(lambda store: store.delete(key))
        if self._remembering():
            self._remembered(lambda store: store.delete(key))

    @contextmanager
    def lock(self, name: str, *, ttl: float, wait: float) -> Iterator[bool]:
        if not self.degraded:
            manager = self._primary.lock(name, ttl=ttl, wait=wait)
            try:
                held = manager.__enter__()
            except StoreError as e:
                self._failed(e)
            else:
                try:
                    yield held
                finally:
                    try:
                        manager.__exit__(None, None, None)
                    except StoreError as e:
                        self._failed(e)
                return
        with self._fallback.lock(name, ttl=ttl, wait=wait) as held:
            yield held

    def ping(self) -> None:
        """Ping the shared store itself: health checks must see the outage."""
        self._primary.ping()

    def close(self) -> None:
        self._primary.close()
        if self._opened is not None:
            self._opened.close()
