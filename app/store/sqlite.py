"""A store in one SQLite file, shared by every worker process on one host.

Why it is safe across processes:

- WAL journal: readers never block the writer, and each statement below is one short write
  transaction, so contention costs milliseconds; ``busy_timeout`` makes a writer wait for
  another instead of failing at once.
- ``add`` is a single ``INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`` statement and
  ``take`` a single ``DELETE ... RETURNING``: SQLite runs each under its write lock, so of
  several processes racing on one key exactly one wins. Where the library predates RETURNING
  (SQLite < 3.35) ``take`` uses a ``BEGIN IMMEDIATE`` transaction instead.
- Expiry is stored as wall-clock seconds (``time.time``): processes do not share a monotonic
  clock, and the file outlives them. A wall clock that jumps shortens or stretches a few TTLs,
  which the ledger and token cache tolerate.

Connections are pooled rather than kept per thread: a threaded dev server starts a thread per
request, and per-thread connections would pile up until ``close``. The pool remembers the
process id so a store built before gunicorn forks never hands a parent's connection, pooled or
lent at the fork, to a child (SQLite forbids carrying connections across ``fork``).

A file deleted or replaced under a running service (a clean-up script, a restore) would split
the store for good: pooled connections keep the old inode open while new ones create an empty
file without the table. So an operation first checks that the path still names the file the
pool holds (one ``stat``), at most every :data:`FILE_CHECK_INTERVAL` seconds and on every
:meth:`SQLiteStore.ping`; when it does not, the store retires its connections, adopts or creates
the file now at the path, logs the event, and :meth:`SQLiteStore.ping` reports it to /healthz
for :data:`RECOVERY_REPORTED` seconds.

The same look at the file notices it made read-only (no write bit in its mode, which SQLite
itself honours even for root): from then on every operation fails, so every worker degrades to
the fallback together. Otherwise connections opened before the change would go on writing while
new ones fail, and the workers would split between the file and the fallback.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from .base import StoreError

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Lock ``name`` is held as the key ``LOCK_PREFIX + name``, in the same table as the data.
LOCK_PREFIX = "lock:"

#: Seconds between purges of expired rows, per store object.
PURGE_INTERVAL = 60.0

#: Expired rows one write deletes at most while it purges: a single DELETE of them all held the
#: write lock, so every worker's writes waited, for 0.4 s at 120,000 rows.
PURGE_BATCH = 1000

#: Idle connections kept for reuse; more are opened under load and closed when returned.
POOL_SIZE = 8

#: WAL pages after which a commit copies them into the database file, syncing both (SQLite's
#: default is 1000: two syncs every few hundred pushes). The WAL file grows to about 16 MB.
CHECKPOINT_PAGES = 4000

#: Seconds an operation trusts that the path still names the file the connections hold: a busy
#: worker keeps using a deleted file that long after the deletion, an idle one not at all. A
#: ``stat`` on every call cost about 3 µs, a third of a read.
FILE_CHECK_INTERVAL = 0.1

#: Seconds /healthz reports that the file was deleted or replaced and the store started anew.
RECOVERY_REPORTED = 60.0

# No index on ``expires``: every write would update a second B-tree for the sake of a purge
# that runs once a minute, and the purge deletes faster scanning the table than through the
# index (a third of the time for 120,000 expired rows). Files of earlier versions lose theirs.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS store (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
DROP INDEX IF EXISTS store_expires;
"""

_SET = (
    "INSERT INTO store (key, value, expires) VALUES (?, ?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires"
)
# The conflict branch only fires on an expired row, so rowcount is 1 exactly when we claimed.
_ADD = _SET + " WHERE store.expires <= ?"
_GET = "SELECT value FROM store WHERE key = ? AND expires > ?"
# The next batch of a purge, found by a read (no lock), then deleted as a range of the key.
_NEXT_BATCH = (
    "SELECT max(key), count(*) FROM"
    " (SELECT key FROM store WHERE key >= ? AND expires <= ? ORDER BY key LIMIT ?)"
)
_PURGE = "DELETE FROM store WHERE key >= ? AND key <= ? AND expires <= ?"


class SQLiteStore:
    """Bytes under string keys in the table ``store`` of the SQLite file at ``path``.

    :param path: the database file; it is created if missing, its directory is not.
    :param timeout: seconds a statement waits for another process's write lock before it
        fails with :class:`StoreError`. Short by default because a push has to be answered
        within WeChat's 5 s, and the caller can degrade when the store is slow.
    :raises StoreError: if the file cannot be opened or initialised.
    """

    #: ``DELETE ... RETURNING`` needs SQLite 3.35; tests turn this off to cover the fallback.
    returning = sqlite3.sqlite_version_info >= (3, 35, 0)

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 2.0) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        self._pool: list[sqlite3.Connection] = []
        self._pool_pid = os.getpid()
        self._pool_lock = threading.Lock()
        self._closed = False
        self._next_purge = 0.0
        self._purged_upto = ""
        # Connections inherited through fork: kept referenced so they are never used, not even
        # closed (SQLite forbids using a connection in a child of the process that opened it).
        self._inherited: list[sqlite3.Connection] = []
        # Which file the connections hold, and each live connection's generation: a connection
        # opened before the file was replaced is closed when it comes back to the pool.
        self._file: tuple[int, int] | None = None
        self._generation = 0
        self._born: dict[sqlite3.Connection, int] = {}
        self._recover_lock = threading.Lock()
        self._recovered_at: float | None = None
        self._trust_file_until = 0.0
        try:
            self._initialise()
        except StoreError:
            self.close()
            raise

    def _initialise(self) -> None:
        """Create the table in the file at the path (new or not) and remember that file."""
        try:
            conn = self._checkout()
            try:
                self._use_wal(conn)
                conn.executescript(_SCHEMA)
            finally:
                self._checkin(conn)
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"SQLite store {self.path!r}: open failed: {e}") from e
        self._file = _identity(self.path)

    def get(self, key: str) -> bytes | None:
        return self._use("get", _get, key)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        _check_ttl(ttl)
        self._use("set", self._set, key, value, ttl)

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        _check_ttl(ttl)
        return self._use("add", self._add, key, value, ttl)

    def add_and_peek(
        self, key: str, value: bytes, ttl: float, peek: str
    ) -> tuple[bool, bytes | None]:
        _check_ttl(ttl)
        return self._use("add", self._add_and_peek, key, value, ttl, peek)

    def take(self, key: str) -> bytes | None:
        return self._use("take", _take_returning if self.returning else _take_in_transaction, key)

    def delete(self, key: str) -> None:
        self._use("delete", _delete, key)

    @contextmanager
    def lock(self, name: str, *, ttl: float, wait: float) -> Iterator[bool]:
        """Hold lock ``name``; see :meth:`app.store.base.Store.lock`.

        The lock is a row claimed with :meth:`add` holding a random owner token; release
        deletes the row only if it still holds that token, so a holder whose lease ran out
        cannot free the lock of the process that took it over. Waiters poll, starting at
        5 ms and backing off to 50 ms: no cross-process wake-up exists in SQLite.
        """
        _check_ttl(ttl)
        key = LOCK_PREFIX + name
        token = secrets.token_hex(16).encode()
        deadline = time.monotonic() + wait
        pause = 0.005
        while not (held := self.add(key, token, ttl)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.05)
        try:
            yield held
        finally:
            if held:
                self._release(key, token)

    def ping(self) -> None:
        """Raise StoreError when the file cannot be read, or was replaced a moment ago.

        It looks at the file whatever the interval: /healthz must not miss a replacement.
        """
        self._trust_file_until = 0.0
        self._use("ping", _read_any)
        if self._recovered_at is not None:
            ago = time.time() - self._recovered_at
            if ago < RECOVERY_REPORTED:
                raise StoreError(
                    f"SQLite store {self.path!r} was deleted or replaced {ago:.0f} s ago and"
                    " started anew: pushes claimed before then may run again"
                )

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL, retrying while other processes are switching it too.

        The journal mode belongs to the file, so this is a no-op once any process did it. But
        SQLite reports SQLITE_BUSY at once, without the busy handler, when several connections
        switch a new file together, as gunicorn workers starting side by side do.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as e:
                if e.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                    raise
            time.sleep(0.01)

    def _set(self, conn: sqlite3.Connection, key: str, value: bytes, ttl: float) -> None:
        self._purge(conn)
        conn.execute(_SET, (key, value, time.time() + ttl))

    def _add(self, conn: sqlite3.Connection, key: str, value: bytes, ttl: float) -> bool:
        self._purge(conn)
        now = time.time()
        return conn.execute(_ADD, (key, value, now + ttl, now)).rowcount == 1

    def _add_and_peek(
        self, conn: sqlite3.Connection, key: str, value: bytes, ttl: float, peek: str
    ) -> tuple[bool, bytes | None]:
        return self._add(conn, key, value, ttl), _get(conn, peek)

    def _release(self, key: str, token: bytes) -> None:
        """Delete the lock row if it is still ours; on failure leave it to expire."""
        try:
            self._use("release lock", _delete_owned, key, token)
        except StoreError as e:
            # Raising here would replace whatever the block raised; the ttl frees the lock.
            logger.warning("lock %r not released, it expires on its own: %s", key, e.message)

    def _purge(self, conn: sqlite3.Connection) -> None:
        """Delete the next batch of expired rows, sweeping the table once per ``PURGE_INTERVAL``
        per store object.

        Each write of a sweep deletes the next ``PURGE_BATCH`` expired rows in key order, so no
        statement holds the write lock long; the sweep ends with a batch that found fewer.
        """
        if time.monotonic() < self._next_purge:
            return
        now, start = time.time(), self._purged_upto
        last, found = conn.execute(_NEXT_BATCH, (start, now, PURGE_BATCH)).fetchone()
        if found < PURGE_BATCH:
            self._next_purge, self._purged_upto = time.monotonic() + PURGE_INTERVAL, ""
        else:
            self._purged_upto = last
        if found:
            conn.execute(_PURGE, (start, last, now))

    def _check_file(self) -> None:
        """Start anew if the path no longer names the file the connections hold; fail while
        that file is read-only (see the module's docstring)."""
        status = _status(self.path)
        if status is not None and (status.st_dev, status.st_ino) == self._file:
            if not status.st_mode & 0o222:
                raise StoreError(
                    f"SQLite store {self.path!r} is read-only: its mode allows no write"
                )
            self._trust_file_until = time.monotonic() + FILE_CHECK_INTERVAL
            return
        with self._recover_lock:
            if _identity(self.path) == self._file:  # another thread recovered meanwhile
                return
            with self._pool_lock:
                self._generation += 1
                stale, self._pool = self._pool, []
            for conn in stale:
                self._born.pop(conn, None)
                conn.close()
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self._initialise()
            self._recovered_at = time.time()
        logger.error(
            "SQLite store %r was deleted or replaced while in use; started anew with the file"
            " now at that path (pushes claimed before may run again)",
            self.path,
        )

    def _use(self, op: str, work: Callable[..., _T], *args: str | bytes | float) -> _T:
        """Run ``work(connection, *args)`` on a lent connection in autocommit mode, and turn
        any sqlite3 error into StoreError.

        A plain call rather than a context manager: a generator-based one cost about as much as
        the rest of this method, on every call of every push.
        """
        try:
            if time.monotonic() >= self._trust_file_until:
                self._check_file()
            conn = self._checkout()
            try:
                return work(conn, *args)
            finally:
                self._checkin(conn)
        except (sqlite3.Error, OSError) as e:
            raise StoreError(f"SQLite store {self.path!r}: {op} failed: {e}") from e

    def _checkout(self) -> sqlite3.Connection:
        pid = os.getpid()
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"SQLite store {self.path!r} is closed")
            if self._pool_pid != pid:
                # Forked: every connection so far is the parent's, pooled or lent when the
                # process forked; set them all aside unused. _checkin knows them by their absence
                # from _born.
                self._inherited += self._born
                self._pool, self._born, self._pool_pid = [], {}, pid
            if self._pool:
                return self._pool.pop()
        # isolation_level=None: autocommit, so each statement is its own short transaction
        # and BEGIN IMMEDIATE is ours to issue. check_same_thread=False: a pooled connection
        # moves between threads, but only one thread holds it at a time.
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
        )
        try:
            # NORMAL is durable across process crashes in WAL mode; only a power cut can lose
            # the last claims, which a deduplication ledger survives. It syncs only at
            # checkpoints, hence fewer of them.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
        except sqlite3.Error:
            conn.close()
            raise
        with self._pool_lock:
            self._born[conn] = self._generation
        return conn

    def _checkin(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            # Only after a failed statement; that error is already on its way to the caller.
            try:
                conn.rollback()
            except sqlite3.Error:
                conn.close()
                return
        with self._pool_lock:
            born = self._born.get(conn)
            if born is None:
                return  # the parent's, lent when the process forked: kept in _inherited
            if born == self._generation and not self._closed and len(self._pool) < POOL_SIZE:
                self._pool.append(conn)
                return
            del self._born[conn]
        conn.close()


def _get(conn: sqlite3.Connection, key: str) -> bytes | None:
    row = conn.execute(_GET, (key, time.time())).fetchone()
    return None if row is None else bytes(row[0])


def _take_returning(conn: sqlite3.Connection, key: str) -> bytes | None:
    now = time.time()
    rows = conn.execute(
        "DELETE FROM store WHERE key = ? RETURNING value, expires", (key,)
    ).fetchall()
    return _unexpired(rows, now)


def _take_in_transaction(conn: sqlite3.Connection, key: str) -> bytes | None:
    """``take`` where SQLite has no RETURNING: IMMEDIATE takes the write lock before the read,
    so no other process can read the same row in between; an error rolls back in _checkin."""
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    rows = conn.execute("SELECT value, expires FROM store WHERE key = ?", (key,)).fetchall()
    conn.execute("DELETE FROM store WHERE key = ?", (key,))
    conn.execute("COMMIT")
    return _unexpired(rows, now)


def _unexpired(rows: list[tuple[bytes, float]], now: float) -> bytes | None:
    if not rows or rows[0][1] <= now:
        return None
    return bytes(rows[0][0])


def _delete(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM store WHERE key = ?", (key,))


def _delete_owned(conn: sqlite3.Connection, key: str, token: bytes) -> None:
    conn.execute("DELETE FROM store WHERE key = ? AND value = ?", (key, token))


def _read_any(conn: sqlite3.Connection) -> None:
    conn.execute("SELECT 1 FROM store LIMIT 1").fetchall()


def _status(path: str) -> os.stat_result | None:
    """What ``stat`` says of the file at ``path``; None when there is none."""
    try:
        return os.stat(path)
    except OSError:
        return None


def _identity(path: str) -> tuple[int, int] | None:
    """The device and inode of the file at ``path``; None when there is none."""
    status = _status(path)
    return None if status is None else (status.st_dev, status.st_ino)


def _check_ttl(ttl: float) -> None:
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds (got {ttl!r})")
