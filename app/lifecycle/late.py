"""Replies that go out after the deadline, through the customer-service API.

Two kinds of push end here (:mod:`.service` says when):

- a handler run that finished with no attempt waiting, its result recorded in the ledger:
  :meth:`LateReplies.settle` leaves it for a retry until WeChat's retry window closes, and
  sends it late if none took it, or at once if an attempt already answered "success";
- a push answered "success" before its handler finished: :meth:`LateReplies.owe` keeps it in the
  store's :mod:`.outbox` until its reply is sent, so that when the process running the handler
  dies another process finds it (:meth:`LateReplies.orphans`) and runs the handler again.

Sending is :mod:`.delivery`'s; this module decides what is owed and when. While the ledger
remembers the push, its reply goes out once: a late delivery first records "success" as the
push's answer, atomically, so it and an attempt answering with the reply never both send it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any

from config import Settings, SlowStrategy

from ..wechat.envelope import Push
from ..wechat.identity import PushKey
from ..wechat.messages import Message, parse_message
from ..wechat.timing import RETRY_WINDOW
from .clock import Clock
from .delivery import Delivery
from .ledger import SUCCESS, Ledger, Result
from .outbox import Outbox
from .runner import HandlerPool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Orphan:
    """A push owed a late reply whose handler's process died before it finished: its handler
    must run again here."""

    push: Push
    message: Message
    key: PushKey
    #: Seconds since WeChat sent the push (its ``CreateTime``).
    age: float


class LateReplies:
    """Decides which results go out late, and keeps the owed ones where others can adopt them.

    :param from_miniprogram: whether a push came to a Mini Program (its late reply goes out
        through the Mini Program's API).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        ledger: Ledger,
        delivery: Delivery,
        outbox: Outbox,
        pool: HandlerPool,
        clock: Clock,
        from_miniprogram: Callable[[Push], bool],
    ) -> None:
        self._settings = settings
        self._ledger = ledger
        self._delivery = delivery
        self._outbox = outbox
        self._pool = pool
        self._clock = clock
        self._from_miniprogram = from_miniprogram

    def settle(
        self, push: Push, message: Message, key: PushKey, result: Result, first_seen: float
    ) -> None:
        """Send a recorded result late if it is owed: now, after the retry window, or never.

        :param first_seen: the monotonic time the push's first attempt arrived.
        """
        if result.reply is None or self._settings.slow_strategy is SlowStrategy.OFF:
            self.forget(key)
            return
        fields = result.reply
        if self._clock.monotonic() - first_seen >= self._settings.ledger_ttl:
            # The ledger has forgotten the push and its delivery. No attempt can have answered
            # with this result (WeChat's retries end within seconds): send it late.
            logger.warning("handler for %s outlived WX_LEDGER_TTL; reply sent late", key)
            self._delivery.send(
                message.from_user_name, fields, miniprogram=self._from_miniprogram(push)
            )
            self.forget(key)
        elif self._ledger.gave_up(key):
            self.deliver(push, message, key, fields)
        else:
            # A retry should take this result; if none comes, deliver late.
            wait = max(0.0, first_seen + RETRY_WINDOW - self._clock.monotonic())
            self._pool.later(wait, lambda: self.deliver(push, message, key, fields))

    def deliver(self, push: Push, message: Message, key: PushKey, fields: dict[str, Any]) -> None:
        """Send ``fields`` late unless an attempt answered the push first."""
        if self._ledger.claim_answer(key, SUCCESS):
            self._delivery.send(
                message.from_user_name, fields, miniprogram=self._from_miniprogram(push)
            )
        self.forget(key)

    def owe(self, key: PushKey, push: Push) -> None:
        """Keep ``push`` in the outbox until its reply is sent."""
        try:
            self._outbox.owe(key.stored, push)
        except Exception as e:  # the store failed: this process still delivers if it can
            logger.warning("late reply of %s not kept for other processes: %s", key, e)

    def forget(self, key: PushKey) -> None:
        """Take the push out of the outbox: its reply went out, or none is owed."""
        try:
            self._outbox.settle(key.stored)
        except Exception as e:  # the store failed: the next check settles it again
            logger.warning("owed reply of %s not cleared: %s", key, e)

    def orphans(self, running: Container[PushKey]) -> list[Orphan]:
        """Look after the owed replies this process watches; return those to run again here.

        Adopts the lists of processes that show no life. For each push owed: settled once it
        has an answer; delivered if its handler finished; otherwise, once the lease of the
        process running it has run out, taken over and returned, to run again.

        :param running: the pushes whose handlers run in this process, which deliver their own.
        """
        try:
            self._outbox.adopt()
            owed = self._outbox.owed()
        except Exception as e:  # the store failed: look again at the next check
            logger.warning("owed late replies not checked: %s", e)
            return []
        found = []
        for push in owed.values():
            try:
                orphan = self._check(push, running)
            except Exception:  # one push's trouble must not stop the checks of the others
                logger.exception("an owed late reply could not be checked")
                continue
            if orphan is not None:
                found.append(orphan)
        return found

    def _check(self, push: Push, running: Container[PushKey]) -> Orphan | None:
        message = parse_message(push.fields)
        key = message.push_key
        if self._ledger.answer(key) is not None:
            self.forget(key)
            return None
        if key in running:
            return None  # running here: its own settling delivers it
        age = max(0.0, self._clock.time() - message.create_time)
        if age >= self._settings.ledger_ttl:
            logger.error("late reply of %s not delivered: the ledger forgot the push", key)
            self.forget(key)
            return None
        if not self._ledger.take_over(key):
            return None  # the process running it is alive, and delivers it
        result = self._ledger.result(key)
        if result is None:
            return Orphan(push, message, key, age)
        if result.reply is None:
            self.forget(key)
        else:
            self.deliver(push, message, key, result.reply)
        return None
