"""Storage for the push ledger and the access_token cache, chosen by URL.

``open_store`` is the only place that knows the URL forms; everything else holds a
:class:`Store` and catches :class:`StoreError`. Importing this package connects to nothing.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from .base import Store as Store
from .base import StoreError as StoreError
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
