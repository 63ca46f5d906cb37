"""Per-user sessions: a small JSON state per user and account, kept in the shared store.

A handler reaches its user's session as ``ctx.session``, a dict of JSON values. It costs nothing
until the handler touches it: the first access takes the user's session lock and loads it, and
when the handler returns the session is saved if it changed and the lock released. So the pushes
of one user are served one after the other wherever they run, and neither loses the other's
update: the lock is held from the first touch to the save, and a second handler of the same
user waits for it (:data:`LOCK_WAIT` at most) when it touches the session too. A handler that
raises leaves the session as it found it.

The record, under ``session:<namespace>:<sha256 of the OpenID>`` (no OpenID in a key name),
expires WX_SESSION_TTL seconds after its last change. Besides the data it keeps the data as
the last change found it (``prev``) and the pushes whose changes it holds (``applied``), which
is what keeps a change from being applied twice: WeChat's retries never run a handler again
(the ledger), but a retry takes a push over when the process running its handler died, and
that process may have saved its change just before. A run of a push whose change is already
applied sees the session as the first run found it (or, if another push of the user changed it
since, as it is) and its own changes are not saved; the log says so.

Two cases give up the guarantee, each logged: a handler that keeps the session longer than
:data:`LOCK_TTL`, and a lock not obtained within :data:`LOCK_WAIT`. The handler then works
without the lock, and when it saves, the keys it changed are written over whatever another push
saved meanwhile, key by key.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, MutableMapping
from contextlib import ExitStack
from typing import Any

from .logs import pseudonym
from .store import Store
from .wechat.identity import PushKey

logger = logging.getLogger(__name__)

#: Seconds a handler may keep its user's session before another push may take it.
LOCK_TTL = 60.0
#: Seconds a handler waits for its user's session while another push's handler has it.
LOCK_WAIT = 30.0
#: Pushes remembered per session as applied; a takeover comes within seconds of the first run.
APPLIED_KEPT = 16

_MISSING = object()


class SessionClosed(RuntimeError):
    """The session was used after its handler returned."""


class Session(MutableMapping[str, Any]):
    """One user's state: string keys, JSON values (tuples come back as lists).

    Loaded on first access; see :mod:`app.sessions` for when it is saved.
    """

    def __init__(self, sessions: Sessions, openid: str, push: PushKey) -> None:
        self._sessions = sessions
        self._openid = openid
        self._push = push
        self._data: dict[str, Any] | None = None
        self._closed = False
        #: Filled by the first access: what was loaded, and how.
        self._loaded = ""
        self._base: dict[str, Any] = {}
        self._record: dict[str, Any] = {}
        self._replay = False
        self._held_since: float | None = None
        self._stack = ExitStack()

    def __getitem__(self, key: str) -> Any:
        return self._state()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys are strings, not {type(key).__name__}")
        self._state()[key] = value

    def __delitem__(self, key: str) -> None:
        del self._state()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._state())

    def __len__(self) -> int:
        return len(self._state())

    def __repr__(self) -> str:
        shown = "not loaded" if self._data is None else repr(self._data)
        return f"<Session of {pseudonym(self._openid)}: {shown}>"

    @property
    def loaded(self) -> bool:
        """Whether the handler touched the session, so it was loaded (and is locked)."""
        return self._data is not None

    def _state(self) -> dict[str, Any]:
        if self._closed:
            raise SessionClosed("a push's session is closed once its handler has returned")
        if self._data is None:
            self._sessions._load(self)
        assert self._data is not None
        return self._data


class Sessions:
    """The sessions of one account in the shared store.

    :param namespace: keeps two accounts sharing a store apart, as the ledger's does.
    :param ttl: seconds a session lives after its last change (WX_SESSION_TTL).
    """

    def __init__(
        self,
        store: Store,
        *,
        namespace: str,
        ttl: float,
        lock_ttl: float = LOCK_TTL,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        self._store = store
        self._prefix = f"session:{namespace}:"
        self._ttl = ttl
        self._lock_ttl = lock_ttl
        self._lock_wait = lock_wait

    def open(self, openid: str, push: PushKey) -> Session:
        """The session of ``openid`` for the handler of ``push``; nothing is read yet."""
        return Session(self, openid, push)

    def finish(self, session: Session, *, save: bool) -> None:
        """Save the session if the handler changed it (``save``: it returned), release it."""
        session._closed = True
        if session._data is None:
            return
        try:
            if save:
                self._save(session, session._data)
        finally:
            session._stack.close()

    def peek(self, openid: str) -> dict[str, Any]:
        """The data of ``openid``'s session as stored, without its lock (tests, tools)."""
        data = _record(self._store.get(self._key(openid))).get("data", {})
        return dict(data) if isinstance(data, dict) else {}

    def _key(self, openid: str) -> str:
        return self._prefix + hashlib.sha256(openid.encode()).hexdigest()

    def _load(self, session: Session) -> None:
        key = self._key(session._openid)
        lock = self._store.lock(key, ttl=self._lock_ttl, wait=self._lock_wait)
        if session._stack.enter_context(lock):
            session._held_since = time.monotonic()
        else:
            logger.warning(
                "session of %s is still held by another push after %.0f s; %s goes on without"
                " waiting, and its changes will be merged key by key",
                pseudonym(session._openid),
                self._lock_wait,
                session._push,
            )
        record = _record(self._store.get(key))
        data = record.get("data", {})
        pushes = record.get("applied", [])
        if session._push.stored in pushes:
            session._replay = True
            first_saw = record.get("prev") if record.get("last") == session._push.stored else None
            data = data if first_saw is None else first_saw
            logger.warning(
                "session of %s already holds the change of an earlier run of %s; this run sees"
                " the session as %s and its changes are not saved",
                pseudonym(session._openid),
                session._push,
                "that run found it" if first_saw is not None else "it is now",
            )
        session._record = record
        session._loaded = _dump(data)
        session._base = json.loads(session._loaded)
        session._data = json.loads(session._loaded)

    def _save(self, session: Session, data: dict[str, Any]) -> None:
        try:
            dumped = _dump(data)
        except (TypeError, ValueError) as e:
            logger.error(
                "session of %s not saved: it holds a value JSON cannot store (%s)",
                pseudonym(session._openid),
                e,
            )
            return
        if dumped == session._loaded or session._replay:
            return
        key = self._key(session._openid)
        record = session._record
        held_since = session._held_since
        if held_since is None or time.monotonic() - held_since > self._lock_ttl:
            current = _record(self._store.get(key))
            if current.get("v", 0) != record.get("v", 0):
                data = _merged(current.get("data", {}), session._base, data)
                record = current
                logger.warning(
                    "session of %s was changed by another push while %s had it without the"
                    " lock; the keys this handler changed were written over it",
                    pseudonym(session._openid),
                    session._push,
                )
        pushes = [*record.get("applied", []), session._push.stored][-APPLIED_KEPT:]
        saved = {
            "v": record.get("v", 0) + 1,
            "data": data,
            "prev": session._base,
            "last": session._push.stored,
            "applied": pushes,
        }
        self._store.set(key, _dump(saved).encode(), self._ttl)


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _record(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        record = json.loads(raw)
    except ValueError:
        logger.error("a session record is not JSON; it starts anew")
        return {}
    return record if isinstance(record, dict) else {}


def _merged(current: dict[str, Any], base: dict[str, Any], mine: dict[str, Any]) -> dict[str, Any]:
    """``current`` with the keys ``mine`` changed or removed since ``base`` done again."""
    merged = dict(current)
    for key in base.keys() | mine.keys():
        value = mine.get(key, _MISSING)
        if value == base.get(key, _MISSING):
            continue
        if value is _MISSING:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
