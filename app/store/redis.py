"""A store in Redis, shared by every worker on every host that points at the same server.

Each operation is one atomic Redis command, so the guarantees hold across hosts: ``SET NX PX``
claims, ``GETDEL`` (Redis 6.2+) takes, and expiry is Redis's own in milliseconds. Keys are
namespaced by a prefix (``"wx:"`` unless told otherwise) so several services or environments
can share one database.

redis-py opens, authenticates and reads from the connections, but the store lends them itself
and sends its commands ready-made, packed by :func:`_pack`: a command through ``redis.Redis``
spends as much time in the client's layers (its pool's bookkeeping, metrics, events, retry
wrappers) as on the wire, and redis-py's packing alone takes three times as long as ours.

A dead or unreachable Redis must not stall a push that WeChat wants answered within 5 s, so
sockets get short connect and read timeouts (0.5 s) and no retries, and every
``redis.exceptions.RedisError`` becomes :class:`StoreError`, which the ledger knows how to
survive. Messages name ``host:port`` and never the URL, which may carry a password.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..threads import PerThread
from .base import StoreError

logger = logging.getLogger(__name__)

#: Lock ``name`` is held as the key ``prefix + LOCK_PREFIX + name``.
LOCK_PREFIX = "lock:"

DEFAULT_PREFIX = "wx:"

# Compare-and-delete: only the holder of the token may release the lock. A plain DEL could
# free a lock that expired and was taken by another process in the meantime.
_RELEASE = """
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
end
return 0
"""


class _Connection(Protocol):
    """What the store uses of a ``redis.connection.Connection`` (redis-py leaves it untyped)."""

    def can_read(self, timeout: float = 0) -> bool: ...
    def connect(self) -> None: ...
    def disconnect(self) -> None: ...
    def send_packed_command(self, command: list[bytes], check_health: bool = True) -> None: ...
    def read_response(self) -> object: ...


class RedisStore:
    """Bytes under string keys in Redis, each key stored as ``prefix + key``.

    :param target: a ``redis://host:port/db`` or ``rediss://`` URL, or a ready
        ``redis.Redis`` client. A URL may carry ``?prefix=...`` and any redis-py connection
        option (``?socket_timeout=2``); options in the URL win over ``timeout``. A client
        passed in keeps its own timeouts and stays open after :meth:`close`: its owner
        closes it.
    :param prefix: the key namespace; wins over ``?prefix=``; ``"wx:"`` when neither is set
        (an explicit empty prefix turns namespacing off).
    :param timeout: seconds for the socket connect and for each reply, for a URL ``target``.
    :raises ValueError: for a malformed URL or a client with ``decode_responses=True``
        (values are bytes).
    """

    def __init__(
        self, target: str | redis.Redis, *, prefix: str | None = None, timeout: float = 0.5
    ) -> None:
        if isinstance(target, str):
            url, url_prefix = _split_prefix(target)
            self._shared = redis.Redis.from_url(
                url,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                # No retry: a SET NX or GETDEL resent after its reply was lost would report
                # the opposite of what happened. The pool already replaces dead connections
                # before use, and the caller degrades on StoreError.
                retry=Retry(NoBackoff(), 0),
            )
            self._owned = True
        else:
            url_prefix, self._shared, self._owned = None, target, False
        # Idle connections, lent to one caller at a time: per native thread under gevent
        # (app/threads.py).
        self._pid = os.getpid()
        self._idle: PerThread[list[_Connection]] = PerThread(list)
        kwargs = self._shared.connection_pool.connection_kwargs
        if kwargs.get("decode_responses"):
            self.close()
            raise ValueError("RedisStore needs a client with decode_responses=False")
        if prefix is None:
            prefix = DEFAULT_PREFIX if url_prefix is None else url_prefix
        self.prefix = prefix
        if "path" in kwargs:
            self.address = str(kwargs["path"])
        else:
            self.address = f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
        self._password = str(kwargs.get("password") or "")
        self._encoding = str(kwargs.get("encoding", "utf-8"))
        self._encoding_errors = str(kwargs.get("encoding_errors", "strict"))

    def get(self, key: str) -> bytes | None:
        (value,) = self._run("GET", ("GET", self.prefix + key))
        return _bytes(value)

    def set(self, key: str, value: bytes, ttl: float) -> None:
        self._run("SET", ("SET", self.prefix + key, value, "PX", _ms(ttl)))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        (added,) = self._run("SET NX", ("SET", self.prefix + key, value, "PX", _ms(ttl), "NX"))
        return added is not None

    def add_and_peek(
        self, key: str, value: bytes, ttl: float, peek: str
    ) -> tuple[bool, bytes | None]:
        added, peeked = self._run(
            "SET NX + GET",
            ("SET", self.prefix + key, value, "PX", _ms(ttl), "NX"),
            ("GET", self.prefix + peek),
        )
        return added is not None, _bytes(peeked)

    def take(self, key: str) -> bytes | None:
        (value,) = self._run("GETDEL", ("GETDEL", self.prefix + key))
        return _bytes(value)

    def delete(self, key: str) -> None:
        self._run("DEL", ("DEL", self.prefix + key))

    @contextmanager
    def lock(self, name: str, *, ttl: float, wait: float) -> Iterator[bool]:
        """Hold lock ``name``; see :meth:`app.store.base.Store.lock`.

        Acquiring is ``SET NX PX`` of a random owner token, polled from 5 ms backing off to
        50 ms; releasing is a Lua compare-and-delete of that token, so a holder whose lease
        ran out cannot free the lock of the process that took it over.
        """
        key = self.prefix + LOCK_PREFIX + name
        token = secrets.token_hex(16).encode()
        px = _ms(ttl)
        deadline = time.monotonic() + wait
        pause = 0.005
        while True:
            (reply,) = self._run("SET NX (lock)", ("SET", key, token, "PX", px, "NX"))
            held = reply is not None
            remaining = deadline - time.monotonic()
            if held or remaining <= 0:
                break
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.05)
        try:
            yield held
        finally:
            if held:
                self._release(key, token)

    def ping(self) -> None:
        self._run("PING", ("PING",))

    def close(self) -> None:
        """Disconnect the idle connections; a client passed in stays open.

        Those of other native threads under gevent are left for the process's exit to close:
        their sockets belong to those threads' hubs, which may be gone already.
        """
        idle = self._idle.shared
        while idle:
            idle.pop().disconnect()
        if self._owned:
            self._shared.close()

    def _run(self, command: str, *commands: tuple[str | bytes | int, ...]) -> list[object]:
        """Send ``commands`` in one write and return their replies: one round trip.

        A connection that failed, or whose replies were not all read, is disconnected before
        it goes back to the idle ones; it connects anew when next lent.
        """
        idle = self._idle_here()
        try:
            conn = idle.pop() if idle else self._new_connection()
            try:
                _make_ready(conn)
                packed = _pack(commands, self._encoding, self._encoding_errors)
                conn.send_packed_command([packed], check_health=False)
                return [conn.read_response() for _ in commands]
            except BaseException:
                conn.disconnect()
                raise
            finally:
                idle.append(conn)
        except redis.exceptions.RedisError as e:
            raise self._failure(command, e) from e

    def _idle_here(self) -> list[_Connection]:
        """The idle connections the calling native thread may use (see ``__init__``)."""
        if os.getpid() != self._pid:
            # Forked: the connections' sockets are the parent's too; set them aside unused.
            self._idle, self._pid = PerThread(list), os.getpid()
        return self._idle.here()

    def _new_connection(self) -> _Connection:
        pool = self._shared.connection_pool
        return cast(_Connection, pool.connection_class(**pool.connection_kwargs))

    def _release(self, key: str, token: bytes) -> None:
        """Compare-and-delete the lock; on failure leave it to expire."""
        try:
            self._run("EVAL (unlock)", ("EVAL", _RELEASE, 1, key, token))
        except StoreError as e:
            # Raising here would replace whatever the block raised; the ttl frees the lock.
            logger.warning("lock %r not released, it expires on its own: %s", key, e.message)

    def _failure(self, command: str, error: redis.exceptions.RedisError) -> StoreError:
        """The StoreError for a redis-py error: it names the server, never its password."""
        detail = str(error)
        if self._password:
            detail = detail.replace(self._password, "***")
        return StoreError(
            f"Redis at {self.address}: {command} failed: {type(error).__name__}: {detail}"
        )


def _make_ready(conn: _Connection) -> None:
    """Connect ``conn``, or connect it anew if the server closed it or left data unread.

    What ``redis.ConnectionPool`` checks when it lends a connection: no command is sent on a
    socket that cannot carry it, since none is retried (see ``__init__``).
    """
    conn.connect()
    try:
        if not conn.can_read():
            return
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        pass
    conn.disconnect()
    conn.connect()


def _pack(commands: Sequence[tuple[str | bytes | int, ...]], encoding: str, errors: str) -> bytes:
    """The bytes ``Connection.pack_commands`` sends for ``commands``, in a third of its time.

    Its general encoder checks each argument against every type redis-py takes; the store's
    arguments are only str (encoded as the client's ``encoding``), bytes and int.
    """
    parts = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for arg in command:
            if isinstance(arg, str):
                arg = arg.encode(encoding, errors)
            elif isinstance(arg, int):
                arg = b"%d" % arg
            parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def _split_prefix(url: str) -> tuple[str, str | None]:
    """Remove our ``prefix`` option from ``url``; redis-py would reject it as unknown."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefixes = [value for name, value in query if name == "prefix"]
    if not prefixes:
        return url, None
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefixes[-1]


def _ms(ttl: float) -> int:
    """Seconds to whole milliseconds, rounded up so a tiny ttl never becomes PX 0."""
    if not ttl > 0:
        raise ValueError(f"ttl must be a positive number of seconds (got {ttl!r})")
    return max(1, math.ceil(ttl * 1000))


def _bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    raise StoreError(f"Redis returned {type(value).__name__}, expected bytes")
