"""Keep answering pushes when the shared store is down, at the cost of cross-process dedup.

A push that cannot be recorded must still be answered within five seconds, and a dead Redis
must not cost a timeout on every call. So a failed call switches to a local in-memory store for
a few seconds (a circuit breaker), logs loudly, and tries the shared store again afterwards.
While degraded, each process deduplicates only its own attempts.
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


class FailoverStore:
    """A :class:`Store` that falls back to ``fallback`` while ``primary`` fails."""

    def __init__(self, primary: Store, fallback: Store, *, retry_after: float = 5.0) -> None:
        """:param retry_after: seconds to stay on the fallback before trying the primary again."""
        self._primary = primary
        self._fallback = fallback
        self._retry_after = retry_after
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """Whether calls currently go to the fallback store."""
        return time.monotonic() < self._down_until

    def _failed(self, error: StoreError) -> None:
        with self._lock:
            was_up = not self.degraded
            self._down_until = time.monotonic() + self._retry_after
        if was_up:
            logger.error(
                "shared store unavailable (%s): DEGRADED to per-process deduplication;"
                " retrying in %.0f s",
                error.message,
                self._retry_after,
            )

    def _call(self, operation: Callable[[Store], _T]) -> _T:
        if not self.degraded:
            try:
                return operation(self._primary)
            except StoreError as e:
                self._failed(e)
        return operation(self._fallback)

    def get(self, key: str) -> bytes | None:
        return self._call(lambda store: store.get(key))

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._call(lambda store: store.set(key, value, ttl))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        return self._call(lambda store: store.add(key, value, ttl))

    def take(self, key: str) -> bytes | None:
        return self._call(lambda store: store.take(key))

    def delete(self, key: str) -> None:
        self._call(lambda store: store.delete(key))

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
        self._fallback.close()
