"""The contract every storage backend keeps.

The push ledger and the access_token cache need very little from storage: bytes under a key
with a time to live, an atomic "add if absent" to claim a push, an atomic "take" so that a
reply is delivered by exactly one process, and a lock so that one process at a time refreshes
the access_token. Keeping the contract this small is what lets SQLite (one host) and Redis
(many hosts) implement it with the same guarantees.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable


class StoreError(Exception):
    """The backend could not be reached or answered with an error.

    Callers that can degrade (the ledger falls back to local deduplication) catch this one
    class; nothing else a backend raises is expected to escape.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@runtime_checkable
class Store(Protocol):
    """Bytes under string keys, each with its own expiry.

    Every method is safe to call from several threads and, for the shared backends, from
    several processes at once. ``ttl`` is in seconds and must be positive (``ValueError``
    otherwise); an expired key behaves exactly like one that was never set.
    """

    def get(self, key: str) -> bytes | None:
        """Return the value, or None when absent or expired."""
        ...

    def set(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value``, replacing any previous value and its expiry."""
        ...

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        """Store ``value`` only if the key is absent (or expired); return whether it did.

        This is the claim of a push: of many callers racing on one key exactly one gets True.
        """
        ...

    def add_and_peek(
        self, key: str, value: bytes, ttl: float, peek: str
    ) -> tuple[bool, bytes | None]:
        """:meth:`add` ``key``, and read ``peek`` in the same round trip.

        The claim of a push also learns whether its user has a kept reply, so the common path
        of a push costs two round trips, not three. Only the add is atomic; the read is a plain
        :meth:`get` made alongside it.
        """
        ...

    def take(self, key: str) -> bytes | None:
        """Atomically return and delete the value; None when absent or expired.

        Of many callers racing on one key at most one receives the value.
        """
        ...

    def delete(self, key: str) -> None:
        """Remove the key; no error if it is absent."""
        ...

    def lock(self, name: str, *, ttl: float, wait: float) -> AbstractContextManager[bool]:
        """Hold a mutual-exclusion lock named ``name`` for the ``with`` block.

        Waits up to ``wait`` seconds to acquire it and yields True when held, False when the
        wait ran out (the caller decides what to do without it). The lock expires after
        ``ttl`` seconds even if its holder dies; leaving the block releases it only if it is
        still the holder's. If the backend fails while releasing, the failure is logged and the
        lock is left to expire, so it never replaces an exception raised in the block; a failure
        while acquiring raises StoreError from the ``with`` statement.

        The lock is held under the key ``"lock:" + name`` in the same key space as the data, so
        keep data keys out of the ``lock:`` prefix.
        """
        ...

    def ping(self) -> None:
        """Raise StoreError if the backend cannot be used right now."""
        ...

    def close(self) -> None:
        """Release connections and files; the store is not used afterwards."""
        ...
