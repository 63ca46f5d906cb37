"""The customer-service window: whether a user can still be sent a message, kept per user.

WeChat takes a customer-service message only within a window one of the user's actions opened,
and only so many in it (API.md §2, §3): a message from the user allows 5 within 48 hours; a
menu click (CLICK, scancode_push, scancode_waitmsg), a follow or a scan of a parametric QR code
allows 3 within a minute, a Mini Program user entering the chat 2. Outside the window WeChat
answers 45015, past the allowance 45047, and an unfollow closes it.

One record per user and account, under ``user:<namespace>:<sha256 of the OpenID>``, holds what
the service knows: when the user last wrote and last acted, how many messages went out since,
when they unfollowed, and the replies kept for their next message (:mod:`.delivery`). The
claim of every push reads it in the same round trip (the ledger's peek), so knowing it costs a
push nothing.

Writing it stays off the push's path: a push notes in this process's memory what it opened, and
only a user whose stored message time is over :data:`REFRESH` old (or whose allowance was used
since, or who unfollowed) is written, in the background within :data:`FLUSH_DELAY`, once. So the
stored window closes up to :data:`REFRESH` early, never late. A short window (a click, follow or
scan) is kept in memory for its minute: the process that saw the push, which is the one that
delivers its late reply, knows it; other processes learn of it only when a message is sent in
it. Every message the service sends is counted, and a refusal closes the window or uses up
the allowance in the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .store import Store
from .wechat.messages import Event, Message

logger = logging.getLogger(__name__)

#: A user's message opens 48 hours for 5 messages.
MESSAGE_WINDOW = 48 * 3600
MESSAGE_ALLOWANCE = 5
#: A click, follow, scan or entering a Mini Program's chat opens one minute.
ACTION_WINDOW = 60
#: The events that open the short window, by lowercase name, and the messages each allows.
ACTION_ALLOWANCES = {
    "click": 3,
    "scancode_push": 3,
    "scancode_waitmsg": 3,
    "subscribe": 3,
    "scan": 3,
    "user_enter_tempsession": 2,
}
#: A stored message time younger than this is not refreshed by a new message.
REFRESH = 600
#: Seconds the users due for a write wait in memory, to be written together.
FLUSH_DELAY = 5.0

Fields = dict[str, Any]
#: ``later(delay, work)``: run ``work`` in the background after ``delay`` seconds.
Later = Callable[[float, Callable[[], object]], None]


@dataclass(frozen=True)
class Reach:
    """Whether a customer-service message can reach a user now; true when it can."""

    #: The message would be taken.
    open: bool
    #: Messages left in the open windows.
    left: int = 0
    #: Unix time the last open window closes (0 when none is open).
    until: float = 0.0
    #: Why not, when closed: for log lines and handlers.
    reason: str = ""
    #: Closed only because the messages the open windows allow are used (WeChat's 45047).
    used_up: bool = False

    def __bool__(self) -> bool:
        return self.open


@dataclass
class Contact:
    """What the service knows of one user's windows, and the replies kept for them."""

    #: Unix time of the user's last message, and messages sent since.
    message_at: int = 0
    message_sent: int = 0
    #: Unix time of the last click, follow or scan, messages sent since, and how many it allows.
    action_at: int = 0
    action_sent: int = 0
    action_allowance: int = 0
    #: Unix time the user unfollowed.
    left_at: int = 0
    #: Replies kept for the user's next message, oldest first.
    kept: list[Fields] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: bytes | None) -> Contact:
        """The record as stored; a missing or unreadable one knows nothing."""
        if raw is None:
            return cls()
        try:
            stored = json.loads(raw)
            return cls(**{name: stored[name] for name in _FIELDS if name in stored})
        except (ValueError, TypeError):
            logger.error("a user's window record is unreadable; it starts anew")
            return cls()

    def dump(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def opened_by(cls, message: Message) -> Contact | None:
        """What ``message`` tells of the user's windows; None for a push that tells nothing."""
        at = message.create_time
        if message.is_user_message:
            return cls(message_at=at)
        if isinstance(message, Event):
            event = message.event.lower()
            if event == "unsubscribe":
                return cls(left_at=at)
            allowance = ACTION_ALLOWANCES.get(event)
            if allowance is not None:
                return cls(action_at=at, action_allowance=allowance)
        return None

    def note(self, seen: Contact) -> None:
        """Take in what a later push opened: a newer action starts a new allowance."""
        if seen.message_at > self.message_at:
            self.message_at, self.message_sent = seen.message_at, 0
        if seen.action_at > self.action_at:
            self.action_at, self.action_sent = seen.action_at, 0
            self.action_allowance = seen.action_allowance
        self.left_at = max(self.left_at, seen.left_at)

    def reach(self, now: float) -> Reach:
        """Whether a message may be sent now, how many, and until when."""
        if self.left_at and self.left_at >= max(self.message_at, self.action_at):
            return Reach(False, reason="the user unfollowed")
        windows = []
        if self.message_at + MESSAGE_WINDOW > now:
            windows.append(
                (MESSAGE_ALLOWANCE - self.message_sent, self.message_at + MESSAGE_WINDOW)
            )
        if self.action_at + ACTION_WINDOW > now:
            windows.append(
                (self.action_allowance - self.action_sent, self.action_at + ACTION_WINDOW)
            )
        left = sum(max(0, n) for n, _ in windows)
        if left:
            return Reach(True, left, max(until for n, until in windows if n > 0))
        if windows:
            return Reach(
                False,
                reason="the messages allowed since the user's last action are used",
                used_up=True,
            )
        if self.message_at:
            return Reach(False, reason="the user last wrote over 48 hours ago")
        return Reach(False, reason="no message from the user within 48 hours is known")

    def count_sent(self, now: float) -> None:
        """Count one message sent, against the window that closes first."""
        if self.action_at + ACTION_WINDOW > now and self.action_sent < self.action_allowance:
            self.action_sent += 1
        else:
            self.message_sent += 1

    def refused(self, errcode: int) -> None:
        """Take in WeChat's refusal: 45015 closes the windows, 45047 uses up their allowance."""
        if errcode == 45015:
            self.message_at = self.action_at = 0
        else:
            self.message_sent = MESSAGE_ALLOWANCE
            self.action_sent = self.action_allowance

    def due(self, seen: Contact) -> bool:
        """Whether ``seen`` changes the stored record enough to be written."""
        if seen.message_at and (
            seen.message_at > self.message_at + REFRESH
            or (seen.message_at > self.message_at and self.message_sent > 0)
        ):
            return True
        return seen.left_at > self.left_at


_FIELDS = tuple(Contact.__dataclass_fields__)


class Windows:
    """The users' records in the shared store, and what this process saw but did not write.

    :param tracked: whether windows are tracked at all: only an account with an AppSecret sends
        customer-service messages; without one only kept replies are stored.
    :param later: schedules the write of the users due for one (the handler pool's ``later``).
    """

    def __init__(
        self, store: Store, *, namespace: str, tracked: bool, later: Later | None = None
    ) -> None:
        self._store = store
        self._prefix = f"user:{namespace}:"
        self.tracked = tracked
        self._later = later
        self._lock = threading.Lock()
        #: Per OpenID: what pushes opened that the store may not know, and whether it is due.
        self._seen: dict[str, tuple[Contact, bool]] = {}
        self._flush_scheduled = False
        self._next_sweep = 0.0

    def key(self, openid: str) -> str:
        """The store key of a user's record: a hash, so no OpenID is in key names or logs."""
        return self._prefix + hashlib.sha256(openid.encode()).hexdigest()

    def saw(self, message: Message, stored: Contact) -> Contact:
        """Note what ``message`` opened, and return what is known of its user's windows.

        :param stored: the user's record as the push's claim read it.
        """
        seen = Contact.opened_by(message) if self.tracked else None
        if seen is None:
            return stored
        openid, now = message.from_user_name, time.time()
        due = stored.due(seen)
        with self._lock:
            earlier, was_due = self._seen.get(openid, (Contact(), False))
            earlier.note(seen)
            self._seen[openid] = (earlier, was_due or due)
            flush = due and not self._flush_scheduled and self._later is not None
            self._flush_scheduled = self._flush_scheduled or flush
            if now >= self._next_sweep:
                self._sweep(now)
        if flush:
            assert self._later is not None
            self._later(FLUSH_DELAY, self.flush)
        known = replace(stored, kept=list(stored.kept))
        known.note(seen)
        return known

    def read(self, openid: str) -> Contact:
        """What is known of ``openid``'s windows: the record, with what this process saw."""
        contact = Contact.parse(self._store.get(self.key(openid)))
        with self._lock:
            entry = self._seen.get(openid)
        if entry is not None:
            contact.note(entry[0])
        return contact

    @contextmanager
    def editing(self, openid: str) -> Iterator[Contact]:
        """Change ``openid``'s record under its lock; it is written if the block changed it.

        Keep the block short (no call to WeChat in it): a push taking a kept reply waits for it.
        """
        key = self.key(openid)
        with self._store.lock(key, ttl=10, wait=5):
            raw = self._store.get(key)
            contact = Contact.parse(raw)
            with self._lock:
                entry = self._seen.get(openid)
                if entry is not None:
                    self._seen[openid] = (entry[0], False)
            if entry is not None:
                contact.note(entry[0])
            yield contact
            dumped = contact.dump()
            if dumped != raw:
                self._store.set(key, dumped, MESSAGE_WINDOW)

    def flush(self) -> None:
        """Write the users due for it, once each; runs in the background."""
        with self._lock:
            self._flush_scheduled = False
            due = [openid for openid, (_, is_due) in self._seen.items() if is_due]
        for openid in due:
            try:
                with self.editing(openid):
                    pass
            except Exception as e:  # the background: report, and go on with the others
                logger.warning("a user's window record not written: %s", e)

    def _sweep(self, now: float) -> None:
        """Forget what the store knows and short windows have passed. Caller holds the lock."""
        self._next_sweep = now + ACTION_WINDOW
        for openid, (seen, due) in list(self._seen.items()):
            if not due and seen.action_at + ACTION_WINDOW < now:
                del self._seen[openid]
