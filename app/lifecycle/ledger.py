"""The push ledger: what every worker process knows about a push, so it is handled once.

WeChat sends an unanswered push three times, about five seconds apart, and each attempt may
land on another worker process or host. The ledger, kept in the shared store, records per push
(under :attr:`~app.wechat.identity.PushKey.stored`, which holds no OpenID):

* ``attempt:<n>`` — claimed by the n-th attempt with an atomic add, so attempts count
  themselves without a counter; attempt 1 is the one that runs the handler, and its value is
  the time of the claim;
* ``result`` — what the handler produced (reply fields, or nothing), once it finished;
* ``lease`` — written every second by the process running the handler (:mod:`.lease`);
  until its first renewal the claim's own time stands for it, so a claim costs no extra write.
  A push whose claim is older than a lease and whose lease is gone, with no result, lost its
  process; a retry takes it over with an atomic add.
* ``answer`` — the bytes the push was answered with, added once, atomically, by whoever
  delivers the result: an attempt answering passively (its bytes), or late delivery through the
  customer-service API ("success"). Adding is what makes delivery happen once, and a retry of an
  answered push gets the very same bytes without running anything. Because it is an add, not
  the taking of something written earlier, a store that fails over between the claim and the
  answer can at worst deliver twice, never lose;
* ``gave-up`` — set by the attempt that answered "success" without the result, so the process
  running the handler knows to deliver it late.

Beside the pushes, ``url:<digest of timestamp and nonce>`` ties a plaintext push's signed URL to
the push it first carried (:meth:`Ledger.bind_url`).

The common path (first attempt, handler done in time) costs two round trips: the claim, and
the answer; a plaintext push one more, to tie its URL. A result is written only when no attempt
was waiting for it.

Every entry expires after the ledger's TTL; WeChat's retries end within about 15 seconds.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..store import Store
from ..wechat.identity import PushKey
from ..wechat.timing import LEASE_TTL
from .clock import SYSTEM_CLOCK, Clock

#: WeChat makes three attempts; a few more leave room for a duplicate from a proxy.
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Result:
    """A finished handler run: the passive reply's fields, or None for "success"."""

    reply: dict[str, Any] | None


@dataclass(frozen=True)
class Claim:
    """One attempt's place in a push's life."""

    #: The attempt's number; 1 means "run the handler".
    attempt: int
    #: The value under the ``peek`` key asked for along with the claim, if any.
    peeked: bytes | None = None


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to a push, kept so that retries of the same push get the same bytes."""

    body: bytes
    mimetype: str


#: What WeChat takes as "received, nothing to reply".
SUCCESS = Answer(b"success", "text/plain")


class Ledger:
    """Records the life of each push in a :class:`~app.store.Store` shared by all workers."""

    def __init__(
        self,
        store: Store,
        *,
        namespace: str,
        ttl: float,
        lease_ttl: float = LEASE_TTL,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """:param namespace: keeps two accounts sharing one store apart, e.g. the AppID.
        :param clock: whose Unix time a claim records and :meth:`orphaned` compares with.
        """
        self._store = store
        self._clock = clock
        self._prefix = f"ledger:{namespace}:"
        self._ttl = ttl
        self._lease_ttl = lease_ttl

    def _key(self, push: PushKey, part: str) -> str:
        return f"{self._prefix}{push.stored}:{part}"

    def begin(self, push: PushKey, *, peek: str | None = None) -> Claim:
        """Count this attempt; attempt 1 is the one that runs the handler.

        :param peek: a store key to read in the same round trip as the first claim (whether
            the user has a kept reply), so the common path stays at two round trips.
        """
        claimed_at = f"{self._clock.time():.3f}".encode()
        first = self._key(push, "attempt:1")
        if peek is None:
            added, peeked = self._store.add(first, claimed_at, self._ttl), None
        else:
            added, peeked = self._store.add_and_peek(first, claimed_at, self._ttl, peek)
        if added:
            return Claim(1, peeked)
        for number in range(2, MAX_ATTEMPTS + 1):
            if self._store.add(self._key(push, f"attempt:{number}"), claimed_at, self._ttl):
                return Claim(number, peeked)
        return Claim(MAX_ATTEMPTS + 1, peeked)

    def renew(self, push: PushKey, *, claimed_at: float) -> None:
        """Extend the lease of a push this process is running, and make sure its claim exists.

        The claim is added again (a no-op while it is there) so that a store which lost it
        (Redis failed over to the host's fallback file, or came back empty; a SQLite file
        replaced) learns within a renewal that the push is running here: a retry landing on
        another worker then follows this run instead of starting a second one.

        :param claimed_at: the Unix time of the first claim, kept for :meth:`orphaned`.
        """
        self._store.set(self._key(push, "lease"), b"1", self._lease_ttl)
        self._store.add(self._key(push, "attempt:1"), f"{claimed_at:.3f}".encode(), self._ttl)

    def orphaned(self, push: PushKey) -> bool:
        """Whether the process that claimed the push has shown no life for a lease's length:
        no lease, and a claim older than one.

        Compares wall-clock times written by different hosts: their clocks must agree to well
        within a lease, which NTP gives (WeChat's timestamp check needs it anyway).
        """
        if self._store.get(self._key(push, "lease")) is not None:
            return False
        claimed_at = self._store.get(self._key(push, "attempt:1"))
        return claimed_at is not None and self._clock.time() - float(claimed_at) > self._lease_ttl

    def take_over(self, push: PushKey) -> bool:
        """Take an :meth:`orphaned` push's lease; True for exactly one caller, False if alive."""
        return self.orphaned(push) and self._store.add(
            self._key(push, "lease"), b"1", self._lease_ttl
        )

    def bind_url(self, push: PushKey, *, timestamp: int, nonce: str, ttl: float) -> bool:
        """Tie the signed URL of ``push`` (its timestamp and nonce: with the Token they make
        the signature) to it for ``ttl`` seconds; False if the URL already carried another push.

        A retry of the push on the same URL is the same push, and passes.
        """
        digest = hashlib.sha256(f"{timestamp}:{nonce}".encode()).hexdigest()[:32]
        key = f"{self._prefix}url:{digest}"
        carried = push.stored.encode()
        if self._store.add(key, carried, ttl):
            return True
        bound = self._store.get(key)
        return bound is None or bound == carried  # None: it expired just now

    def finish(self, push: PushKey, result: Result) -> None:
        """Record what the handler produced, for every attempt that waits on it."""
        self._store.set(self._key(push, "result"), json.dumps(result.reply).encode(), self._ttl)

    def result(self, push: PushKey) -> Result | None:
        """Return the handler's result, or None while it is still running."""
        raw = self._store.get(self._key(push, "result"))
        return None if raw is None else Result(json.loads(raw))

    def claim_answer(self, push: PushKey, answer: Answer) -> bool:
        """Record ``answer`` as the push's, if none is yet: True for exactly one caller, which
        then delivers (passively with these bytes, or late when they are "success")."""
        value = answer.mimetype.encode() + b"\n" + answer.body
        return self._store.add(self._key(push, "answer"), value, self._ttl)

    def give_up(self, push: PushKey) -> None:
        """Note that the push was answered "success" before its result was ready."""
        self._store.set(self._key(push, "gave-up"), b"1", self._ttl)

    def gave_up(self, push: PushKey) -> bool:
        """Whether an attempt answered "success" without waiting for the result."""
        return self._store.get(self._key(push, "gave-up")) is not None

    def answer(self, push: PushKey) -> Answer | None:
        """Return the answer an earlier attempt gave, if one did."""
        raw = self._store.get(self._key(push, "answer"))
        if raw is None:
            return None
        mimetype, _, body = raw.partition(b"\n")
        return Answer(body, mimetype.decode())
