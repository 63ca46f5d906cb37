"""A store in this process's memory, for tests and single-worker development.

Nothing here is shared between processes: under several gunicorn workers each worker would
keep its own ledger and claim the same push once per worker. ``open_store("memory://")`` is
for one process only.

Expiry uses ``time.monotonic`` because nothing outside this process reads the deadlines, and a
monotonic clock cannot jump when the wall clock is corrected. Expired keys are dropped when
they are read and swept from the whole dict at most once a minute, so a long-running process
does not keep every push it ever saw.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Lock ``name`` is held as the key ``LOCK_PREFIX + name``, in the same dict as the data.
LOCK_PREFIX = "lock:"

#: Seconds between sweeps of expired keys.
SWEEP_INTERVAL = 60.0


class MemoryStore:
    """Bytes under string keys in a dict guarded by one ``threading.Condition``.

    The condition doubles as the lock's wait queue: a release wakes the waiters at once
    instead of leaving them to poll.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}
        self._cond = threading.Condition(threading.Lock())
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL

    def get(self, key: str) -> bytes | None:
        with self._cond:
            return self._live(key, time.monotonic())

    def set(self, key: str, value: bytes, ttl: float) -> None:
        _check_ttl(ttl)
        with self._cond:
            now = time.monotonic()
            self._sweep(now)
            self._data[key] = (value, now + ttl)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        _check_ttl(ttl)
        with self._cond:
            now = time.monotonic()
            self._sweep(now)
            if self._live(key, now) is not None:
                return False
            self._data[key] = (value, now + ttl)
            return True

    def add_and_peek(
        self, key: str, value: bytes, ttl: float, peek: str
    ) -> tuple[bool, bytes | None]:
        return self.add(key, value, ttl), self.get(peek)

    def take(self, key: str) -> bytes | None:
        with self._cond:
            value = self._live(key, time.monotonic())
            self._data.pop(key, None)
            return value

    def delete(self, key: str) -> None:
        with self._cond:
            self._data.pop(key, None)

    @contextmanager
    def lock(self, name: str, *, ttl: float, wait: float) -> Iterator[bool]:
        """Hold lock ``name``; see :meth:`app.store.base.Store.lock`.

        The owner token makes the release a no-op when the lock expired during the block and
        somebody else took it: the late holder must not free the new holder's lock.
        """
        _check_ttl(ttl)
        key = LOCK_PREFIX + name
        token = secrets.token_bytes(16)
        deadline = time.monotonic() + wait
        with self._cond:
            while True:
                now = time.monotonic()
                if self._live(key, now) is None:
                    self._data[key] = (token, now + ttl)
                    held = True
                    break
                if now >= deadline:
                    held = False
                    break
                # Wake at the wait's end or when the holder's lease runs out, whichever is
                # first; a release notifies earlier.
                self._cond.wait(min(deadline, self._data[key][1]) - now)
        try:
            yield held
        finally:
            if held:
                with self._cond:
                    entry = self._data.get(key)
                    if entry is not None and entry[0] == token:
                        del self._data[key]
                    self._cond.notify_all()

    def ping(self) -> None:
        """Memory is always there."""

    def close(self) -> None:
        with self._cond:
            self._data.clear()

    def _live(self, key: str, now: float) -> bytes | None:
        """Return the unexpired value of ``key``, dropping it if expired. Caller holds the lock."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._data[key]
            return None
        return entry[0]

    def _sweep(self, now: float) -> None:
        """Drop every expired key, at most once per ``SWEEP_INTERVAL``. Caller holds the lock."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL
        for key in [k for k, (_, expires) in self._data.items() if expires <= now]:
            del self._data[key]


def _check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds (got {ttl!r})")
