"""Storage for the push ledger and the access_token cache, chosen by URL.

``open_store`` is the only place that knows the URL forms; everything else holds a
:class:`Store` and catches :class:`StoreError`. Importing this package connects to nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from urllib.parse import urlsplit

from .base import Store as Store
from .base import StoreError as StoreError
from .failover import FailoverStore
from .memory import MemoryStore as MemoryStore
from .redis import RedisStore as RedisStore
from .sqlite import SQLiteStore as SQLiteStore

URL_FORMS = (
    "memory:// (one process only), sqlite:///relative/path.db, sqlite:////absolute/path.db, "
    "redis://[:password@]host:6379/0[?prefix=wx:] or rediss://..."
)


def open_store(url: str) -> Store:
    """Open the store that ``url`` names.

    :param url: ``memory://``; ``sqlite:///relative/path.db`` (relative to the working
        directory) or ``sqlite:////absolute/path.db``, whose parent directory is created;
        ``redis://host:port/db`` or ``rediss://host:port/db``, optionally with
        ``?prefix=...`` for the key namespace (default ``wx:``) and redis-py options such as
        ``?socket_timeout=1``.
    :return: a store; nothing is connected yet for Redis, the file is open for SQLite.
    :raises ValueError: for an unknown scheme or a malformed URL; the message never repeats
        the URL, which may carry a password.
    :raises StoreError: when the SQLite file or its directory cannot be created.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "memory":
        return MemoryStore()
    if scheme == "sqlite":
        return SQLiteStore(_sqlite_path(url))
    if scheme in ("redis", "rediss"):
        return RedisStore(url)
    raise ValueError(f"unknown store URL scheme {scheme!r}; use {URL_FORMS}")


def open_shared_store(url: str) -> Store:
    """Open the store ``url`` names, ready to survive its failures (:mod:`.failover`).

    A failing shared store falls back to a SQLite file in the host's temporary directory, named
    after the URL so every worker of this service on the host shares it, and, should that fail
    too, to this process's memory. ``memory://`` cannot fail and is returned as it is.
    """
    primary = open_store(url)
    if isinstance(primary, MemoryStore):
        return primary
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), f"wx-push-fallback-{digest}.db")

    def open_host_store() -> Store:
        try:
            return FailoverStore(
                SQLiteStore(path), MemoryStore(), fallback_name="per-process memory (no dedup)"
            )
        except StoreError:
            return MemoryStore()

    return FailoverStore(primary, open_host_store, fallback_name=f"the host's fallback file {path}")


def _sqlite_path(url: str) -> str:
    """Return the file path of a SQLAlchemy-style ``sqlite:///`` URL, creating its directory."""
    head = "sqlite:///"
    if not url.lower().startswith(head) or len(url) == len(head):
        raise ValueError(
            "a SQLite store URL is sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    path = url[len(head) :]
    if "?" in path or "#" in path:
        raise ValueError(f"a SQLite store URL takes no query or fragment (got path {path!r})")
    parent = os.path.dirname(path)
    if parent:
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the directory {parent!r} for {path!r}: {e}") from e
    return path
