"""Replies owed late, kept in the shared store so that a process's death does not lose them.

Once an attempt has answered "success" without the handler's result (the customer-service
strategy at the first deadline, the retry strategy at WeChat's last attempt), WeChat will not
come back: the reply can only go out late, from the process running the handler. If that
process is killed (``kill -9``, the OOM killer, a host that dies) before the handler returns,
no retry takes the push over, and the reply would be lost although the push was accepted.

So the process whose attempt gave up keeps the push here, in its own list in the store, and
shows that it is alive with a short-lived key it renews while the list is not empty. Every
process looks, every :data:`CHECK_INTERVAL` seconds, at the roster of processes that keep such
lists. A list whose owner shows no life is taken, atomically, by one process, which then
watches those pushes as its own: the service (:meth:`.service.WeChatService.check_owed`)
delivers the result if the handler finished, or takes the push over once its lease is gone
and runs the handler again.

The store holds the push's decrypted fields (the user's message) for at most the ledger's
TTL, like a kept reply holds the reply.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import threading
import time

from ..store import Store
from ..wechat.codec import BodyFormat
from ..wechat.envelope import Mode, Push
from ..wechat.timing import LEASE_RENEWAL, LEASE_TTL

logger = logging.getLogger(__name__)

#: Seconds between two looks at the owed replies and at the roster, per process.
CHECK_INTERVAL = LEASE_RENEWAL

#: Seconds a process's list is left alone after its last sign of life.
ALIVE_TTL = LEASE_TTL

#: How long roster changes wait for the roster's lock before trying again at the next check.
_ROSTER_WAIT = 1.0


class Outbox:
    """The pushes this process owes a late reply for, kept where another process can adopt them.

    :param namespace: the account's, as the ledger's.
    :param ttl: how long a list is kept (the ledger's TTL: past it, nothing is owed any more).
    """

    def __init__(
        self, store: Store, *, namespace: str, ttl: float, alive_ttl: float = ALIVE_TTL
    ) -> None:
        self._store = store
        self._prefix = f"outbox:{namespace}:"
        self._ttl = ttl
        self._alive_ttl = alive_ttl
        #: This process's name in the roster: random, so that hosts never collide.
        self.owner: str = secrets.token_hex(8)
        #: By the push key's stored form: each push, and its entry of the list (JSON, made once).
        self._owed: dict[str, tuple[Push, str]] = {}
        self._lock = threading.Lock()
        # Writes of the list: one thread at a time writes it whole, again while others
        # changed it meanwhile (see _save).
        self._saving = False
        self._dirty = False
        #: When this process last saw itself in the roster (monotonic seconds).
        self._enlisted_at = -math.inf

    def owe(self, key: str, push: Push) -> None:
        """Keep ``push`` (whose :attr:`PushKey.stored` is ``key``) until :meth:`settle`.

        Writes the store: call it off the request's greenlet.
        """
        entry = _dumps(push)
        with self._lock:
            self._owed[key] = (push, entry)
        self._save()
        self._enlist()

    def settle(self, key: str) -> None:
        """Forget ``key``: its reply went out, or it never will."""
        with self._lock:
            if self._owed.pop(key, None) is None:
                return
        self._save()

    def owed(self) -> dict[str, Push]:
        """The pushes this process watches, by key."""
        with self._lock:
            return {key: push for key, (push, _) in self._owed.items()}

    def adopt(self) -> dict[str, Push]:
        """Show this process alive, and take the lists of processes that show no life.

        :return: the pushes adopted now, by key (also watched from now on).
        """
        if self._dirty:
            self._save()  # a write failed earlier
        if self._owed:
            self._store.set(self._key("alive", self.owner), b"1", self._alive_ttl)
        raw = self._store.get(self._key("roster"))
        owners = [owner for owner in _names(raw) if owner != self.owner]
        adopted: dict[str, Push] = {}
        for owner in owners:
            if self._store.get(self._key("alive", owner)) is not None:
                continue
            # One process gets the list; whoever takes the roster's lock first strikes the name.
            taken = self._store.take(self._key("owed", owner))
            self._change_roster(remove=owner)
            if taken is not None:
                adopted.update(_loads(taken))
        if adopted:
            with self._lock:
                self._owed.update((key, (push, _dumps(push))) for key, push in adopted.items())
            self._save()
            self._enlist()
        return adopted

    def _enlist(self) -> None:
        """Put this process in the roster if it is not there: it was never, or others struck
        it while its list was empty and it showed no life.

        Others strike a process only after the alive TTL without a sign of life, and every
        write of a list is one: found in the roster less than half of that ago, it still is.
        """
        now = time.monotonic()
        if now - self._enlisted_at < self._alive_ttl / 2:
            return
        if self.owner in _names(self._store.get(self._key("roster"))):
            self._enlisted_at = now
        elif self._change_roster(add=self.owner):
            self._enlisted_at = now

    def _save(self) -> None:
        """Write this process's list as it is now, whole.

        A burst of slow conversations owes hundreds of replies at once, from many threads: one
        thread writes at a time, and a call made meanwhile leaves its change to that thread,
        which writes again before it returns. So the list is written as often as the store
        allows, not once per change with every change rewriting all the others.
        """
        with self._lock:
            self._dirty = True
            if self._saving:
                return
            self._saving = True
        try:
            while True:
                with self._lock:
                    if not self._dirty:
                        return
                    self._dirty = False
                    entries = [(key, entry) for key, (_, entry) in self._owed.items()]
                self._write(entries)
        except BaseException:
            with self._lock:
                self._dirty = True  # written at the next change or check
            raise
        finally:
            with self._lock:
                self._saving = False

    def _write(self, entries: list[tuple[str, str]]) -> None:
        key = self._key("owed", self.owner)
        if not entries:
            self._store.delete(key)
            return
        body = ",".join(f"{json.dumps(name)}:{entry}" for name, entry in entries)
        self._store.set(key, ("{" + body + "}").encode(), self._ttl)
        self._store.set(self._key("alive", self.owner), b"1", self._alive_ttl)

    def _change_roster(self, *, add: str | None = None, remove: str | None = None) -> bool:
        """Add or remove a process in the roster under its lock; whether it was done."""
        with self._store.lock(self._prefix + "roster", ttl=5.0, wait=_ROSTER_WAIT) as held:
            if not held:
                return False
            key = self._key("roster")
            owners = _names(self._store.get(key))
            if add is not None and add not in owners:
                owners.append(add)
            if remove is not None and remove in owners:
                owners.remove(remove)
            self._store.set(key, json.dumps(owners).encode(), self._ttl)
            return True

    def _key(self, part: str, owner: str = "") -> str:
        return f"{self._prefix}{part}:{owner}" if owner else f"{self._prefix}{part}"


def _names(raw: bytes | None) -> list[str]:
    if raw is None:
        return []
    try:
        names = json.loads(raw)
    except ValueError:
        return []
    return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []


def _dumps(push: Push) -> str:
    """One push as JSON, an entry of a list."""
    return json.dumps(
        {
            "fields": push.fields,
            "mode": push.mode.value,
            "format": push.body_format.value,
            "timestamp": push.timestamp,
            "nonce": push.nonce,
        },
        ensure_ascii=False,
    )


def _loads(raw: bytes) -> dict[str, Push]:
    """The pushes of a list; one that cannot be read is logged and left out."""
    try:
        entries = json.loads(raw)
    except ValueError:
        logger.error("a list of owed replies could not be read; its replies are lost")
        return {}
    pushes = {}
    for key, entry in entries.items():
        try:
            pushes[key] = Push(
                fields=entry["fields"],
                mode=Mode(entry["mode"]),
                body_format=BodyFormat(entry["format"]),
                timestamp=int(entry["timestamp"]),
                nonce=str(entry["nonce"]),
            )
        except (KeyError, TypeError, ValueError):
            logger.error("an owed reply could not be read; it is lost")
    return pushes
