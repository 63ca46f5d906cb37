"""One access_token for every process and host, kept in the shared store.

Each ``/cgi-bin/token`` call issues a new token and revokes the last, and a forced
``/cgi-bin/stable_token`` replaces the token everyone holds, so processes that refresh on their
own knock each other out with 40001 (API.md §1). Here the token is cached in the store as
JSON ``{"access_token": ..., "expires_at": <wall-clock seconds>}`` under
``access_token:<appid>``, and only the holder of the store lock ``token-refresh:<appid>`` asks
WeChat for a new one::

    read the cache ──── usable ─────────────────────────────────────────► use it
         │ missing or past its refresh point
    take the lock (≤ 10 s) ── not had ── re-read once ── found ─────────► use it
         │ held                                 └── still missing ──────► TokenRefreshTimeout
    re-read: another process may have refreshed while we waited ─ found ► use it
         │ still missing
    fetch; cache it until ``refresh_margin`` s before it expires ───────► use it

When WeChat refuses a token, :meth:`SharedAccessToken.replace` takes the same path, except that
a cached token equal to the refused one counts as missing and is deleted first: the check and
the delete happen under the lock, where no other process can be writing a fresh token, so a
fresh token from another process is never thrown away. The HTTP side is not known here: each
call passes a ``fetch`` function, so the sync and the async client share this code and the
cache.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from ..store import Store
from .errors import TokenRefreshTimeout

logger = logging.getLogger(__name__)

#: ``fetch(force) -> (access_token, expires_in seconds)``; ``force`` asks for a new token even
#: if the endpoint would hand out the current one (stable_token's ``force_refresh``).
Fetch = Callable[[bool], tuple[str, float]]


class SharedAccessToken:
    """The access_token of one account, shared through ``store``.

    :param store: the store every process of the service uses.
    :param appid: namespaces the cache key and the lock, so accounts sharing a store never mix.
    :param refresh_margin: treat a token as gone when it has less than this many seconds left
        (or less than half its life, for tokens shorter than twice the margin).
    :param lock_ttl: seconds after which the lock frees itself if its holder died; longer than
        the slowest ``fetch``, or a second process could fetch alongside.
    :param lock_wait: seconds to wait for another process's refresh.
    """

    def __init__(
        self,
        store: Store,
        appid: str,
        *,
        refresh_margin: float,
        lock_ttl: float,
        lock_wait: float,
    ) -> None:
        self._store = store
        self._margin = refresh_margin
        self._lock_ttl = lock_ttl
        self._lock_wait = lock_wait
        self.appid = appid
        #: Where the token is cached.
        self.key = f"access_token:{appid}"
        #: The lock held while fetching.
        self.lock_name = f"token-refresh:{appid}"

    def get(self, fetch: Fetch) -> str:
        """Return a usable token, calling ``fetch`` (under the lock) only if no process has
        cached one.

        :raises TokenRefreshTimeout: the lock stayed taken and nothing was cached meanwhile.
        :raises app.store.StoreError: the store failed.
        """
        token = self._cached()
        return token if token is not None else self._refresh(fetch, refused=None)

    def replace(self, refused: str, fetch: Fetch) -> str:
        """Return a token other than ``refused``: the one another process already cached, or a
        new one fetched with ``force`` (the endpoint could otherwise return ``refused`` again).
        """
        return self._refresh(fetch, refused=refused)

    def _cached(self) -> str | None:
        """The cached token, or None when absent, malformed or expired."""
        raw = self._store.get(self.key)
        if raw is None:
            return None
        try:
            entry = json.loads(raw)
            token, expires_at = entry["access_token"], float(entry["expires_at"])
        except (ValueError, TypeError, KeyError):
            logger.warning("ignoring a malformed cached access_token of %s", self.appid)
            return None
        # The store's TTL ends at the refresh point; expires_at also guards against a writer
        # whose margin or clock differ from ours.
        if not isinstance(token, str) or not token or expires_at <= time.time():
            return None
        return token

    def _refresh(self, fetch: Fetch, refused: str | None) -> str:
        with self._store.lock(self.lock_name, ttl=self._lock_ttl, wait=self._lock_wait) as held:
            cached = self._cached()
            if cached is not None and cached != refused:
                return cached
            if not held:
                raise TokenRefreshTimeout(
                    f"another process held the access_token refresh lock of {self.appid} for"
                    f" {self._lock_wait:g} s and cached no usable token"
                )
            if cached is not None:
                self._store.delete(self.key)
            token, expires_in = fetch(refused is not None)
            entry = {"access_token": token, "expires_at": time.time() + expires_in}
            ttl = max(expires_in - self._margin, expires_in / 2)
            self._store.set(self.key, json.dumps(entry).encode(), ttl)
            return token
