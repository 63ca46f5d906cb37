"""A store in Redis, shared by every worker on every host that points at the same server.

Each operation is one atomic Redis command, so the guarantees hold across hosts: ``SET NX PX``
claims, ``GETDEL`` (Redis 6.2+) takes, and expiry is Redis's own in milliseconds. Keys are
namespaced by a prefix (``"wx:"`` unless told otherwise) so several services or environments
can share one database.

A dead or unreachable Redis must not stall a push that WeChat wants answered within 5 s, so
sockets get short connect and read timeouts (0.5 s) and no retries, and every
``redis.exceptions.RedisError`` becomes :class:`StoreError`, which the ledger knows how to
survive. Messages name ``host:port`` and never the URL, which may carry a password.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from gevent import monkey
from redis.backoff import NoBackoff
from redis.retry import Retry

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
        # Under gevent (sockets patched), a socket belongs to the hub of the native thread that
        # opened it, and handlers run on native threads of their own (app/runner.py): each such
        # thread gets a client of its own, opened on first use; the thread that built the store
        # shares one.
        self._home = threading.get_native_id()
        self._per_thread: dict[int, redis.Redis] = {}
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
        self._release_script = self._shared.register_script(_RELEASE)

    @property
    def _client(self) -> redis.Redis:
        """The client for the calling native thread (see ``_per_thread``)."""
        native = threading.get_native_id()
        if native == self._home or not self._owned or not monkey.is_module_patched("socket"):
            return self._shared
        client = self._per_thread.get(native)
        if client is None:
            pool = self._shared.connection_pool
            client = redis.Redis(
                connection_pool=redis.ConnectionPool(
                    connection_class=pool.connection_class, **pool.connection_kwargs
                )
            )
            self._per_thread[native] = client
        return client

    def get(self, key: str) -> bytes | None:
        with self._errors("GET"):
            return _bytes(self._client.get(self.prefix + key))

    def set(self, key: str, value: bytes, ttl: float) -> None:
        with self._errors("SET"):
            self._client.set(self.prefix + key, value, px=_ms(ttl))

    def add(self, key: str, value: bytes, ttl: float) -> bool:
        with self._errors("SET NX"):
            return bool(self._client.set(self.prefix + key, value, px=_ms(ttl), nx=True))

    def add_and_peek(
        self, key: str, value: bytes, ttl: float, peek: str
    ) -> tuple[bool, bytes | None]:
        with self._errors("SET NX + GET"):
            pipeline = self._client.pipeline(transaction=False)
            pipeline.set(self.prefix + key, value, px=_ms(ttl), nx=True)
            pipeline.get(self.prefix + peek)
            added, peeked = pipeline.execute()
        return bool(added), _bytes(peeked)

    def take(self, key: str) -> bytes | None:
        with self._errors("GETDEL"):
            return _bytes(self._client.getdel(self.prefix + key))

    def delete(self, key: str) -> None:
        with self._errors("DEL"):
            self._client.delete(self.prefix + key)

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
            with self._errors("SET NX (lock)"):
                held = bool(self._client.set(key, token, px=px, nx=True))
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
        with self._errors("PING"):
            self._client.ping()

    def close(self) -> None:
        if self._owned:
            self._shared.close()
            for client in list(self._per_thread.values()):
                client.close()

    def _release(self, key: str, token: bytes) -> None:
        """Compare-and-delete the lock; on failure leave it to expire."""
        try:
            with self._errors("EVALSHA (unlock)"):
                self._release_script(keys=[key], args=[token], client=self._client)
        except StoreError as e:
            # Raising here would replace whatever the block raised; the ttl frees the lock.
            logger.warning("lock %r not released, it expires on its own: %s", key, e.message)

    @contextmanager
    def _errors(self, command: str) -> Iterator[None]:
        """Turn any redis-py error into StoreError naming the server, never its password."""
        try:
            yield
        except redis.exceptions.RedisError as e:
            detail = str(e)
            if self._password:
                detail = detail.replace(self._password, "***")
            message = f"Redis at {self.address}: {command} failed: {type(e).__name__}: {detail}"
            raise StoreError(message) from e


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
