"""From a verified push to the answer that leaves before the deadline, once per push.

The life of a push (see :mod:`app.ledger` for what is stored):

1. The first attempt claims the push and starts its handler on the pool; later attempts never
   start another run, they wait for that one (single flight), on any worker or host. Only when
   the claim's lease runs out, because the process running the handler died, does a retry take
   the push over and run the handler itself (:mod:`app.lease`).
2. An attempt waits for the result until the deadline. With a result it answers passively,
   if it is the one that takes the delivery obligation; otherwise it returns the bytes an
   earlier attempt answered with, so retries get identical bytes.
3. At the deadline without a result, WX_SLOW_STRATEGY decides: ``retry`` lets attempts 1 and 2
   lapse so WeChat tries again (the connection closes with no answer), the last attempt answers
   "success"; ``customer_service`` answers "success" at once; ``off`` answers "success" and
   drops the late result. After a "success" the result is delivered late (:mod:`app.delivery`).
4. If WeChat never comes back after a lapse, the process that ran the handler delivers the
   result late once the retry window has passed.

Account rules live here too: Mini Programs (and every JSON push) take no passive content, so
their content replies go to late delivery straight away.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from config import AccountType, Settings, SlowStrategy

from . import metrics
from .delivery import Delivery
from .lease import LeaseKeeper
from .ledger import SUCCESS, Answer, Ledger, Result
from .router import Router
from .runner import HandlerPool
from .store import Store
from .wechat.codec import BodyFormat
from .wechat.crypto import MessageCrypto
from .wechat.envelope import Account, Push, seal
from .wechat.identity import PushKey
from .wechat.messages import Event, Message
from .wechat.replies import Reply, TransferCustomerServiceReply, make_reply

logger = logging.getLogger(__name__)

#: WeChat's attempts per push; the last one is answered "success" if nothing is ready.
ATTEMPTS = 3
#: Seconds from the first attempt after which WeChat has stopped retrying (3 × ~5 s + slack).
RETRY_WINDOW = 20.0
#: Events raised from the user's chat, the only ones whose passive reply the user sees
#: (PROTOCOL.md, "Unsettled"); content for any other event is not sent.
REPLYABLE_EVENTS = frozenset(
    {
        "subscribe",
        "scan",
        "click",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
    }
)
_MIMETYPES = {BodyFormat.XML: "application/xml", BodyFormat.JSON: "application/json"}


class WeChatService:
    """Answers pushes for one account: handler runs, the ledger, deadlines, late delivery."""

    def __init__(
        self,
        settings: Settings,
        account: Account,
        router: Router,
        *,
        store: Store,
        ledger: Ledger,
        pool: HandlerPool,
        delivery: Delivery,
        leases: LeaseKeeper,
    ) -> None:
        self.settings = settings
        self.account = account
        self.router = router
        self.store = store
        self.ledger = ledger
        self.pool = pool
        self.delivery = delivery
        self.leases = leases

    def close(self) -> None:
        """Finish running handlers and owed deliveries, then release the store."""
        self.pool.shutdown()
        self.leases.close()
        self.store.close()

    def answer(self, push: Push, message: Message, *, deadline: float) -> Answer | None:
        """Answer ``push`` (parsed as ``message``) before ``deadline``, a monotonic time.

        :return: the answer, or None when this attempt should lapse so that WeChat retries.
        """
        key = message.push_key
        attempt = self.ledger.begin(key)
        if attempt == 1:
            self._run(push, message, key, deadline)
        else:
            metrics.DEDUP_HITS.inc()
            earlier = self.ledger.answer(key)
            if earlier is not None:
                logger.info("retry %d of %s answered from the ledger", attempt, key)
                return earlier
            self._follow(push, message, key, attempt, deadline)
        result = self.ledger.result(key)
        if result is not None:
            return self._answer_with(push, key, result, deadline)
        return self._at_deadline(push, message, key, attempt, deadline)

    def _run(self, push: Push, message: Message, key: PushKey, deadline: float) -> None:
        """Start the handler under this process's lease and wait for it until the deadline."""
        self.leases.hold(key)
        future = self.pool.submit(lambda: self._produce(push, message, key, deadline))
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            pass

    def _follow(
        self, push: Push, message: Message, key: PushKey, attempt: int, deadline: float
    ) -> None:
        """Wait for the run an earlier attempt started; take the push over if its process died."""
        for _ in self._polls(deadline):
            if self.ledger.result(key) is not None:
                return
            if self.ledger.take_over(key):
                if self.ledger.result(key) is None:  # it may have finished just before
                    metrics.TAKEOVERS.inc()
                    logger.warning(
                        "the process running %s stopped; attempt %d runs the handler again",
                        key,
                        attempt,
                    )
                    self._run(push, message, key, deadline)
                return

    def _at_deadline(
        self, push: Push, message: Message, key: PushKey, attempt: int, deadline: float
    ) -> Answer | None:
        metrics.DEADLINE_MISSES.inc()
        strategy = self.settings.slow_strategy
        if attempt == 1 and strategy is not SlowStrategy.OFF:
            self.pool.submit(lambda: self.delivery.typing(message.from_user_name))
        if strategy is SlowStrategy.RETRY and attempt < ATTEMPTS:
            logger.info(
                "handler for %s still running; attempt %d lapses for a retry",
                key,
                attempt,
            )
            return None
        if strategy is SlowStrategy.OFF:
            logger.warning("handler for %s missed the deadline; answered success", key)
            return SUCCESS
        self.ledger.give_up(key)
        result = self.ledger.result(key)
        if result is not None:
            return self._answer_with(push, key, result, deadline)
        logger.warning("handler for %s missed the deadline; its reply will be sent late", key)
        return SUCCESS

    def _answer_with(self, push: Push, key: PushKey, result: Result, deadline: float) -> Answer:
        if result.reply is None:
            return SUCCESS
        if self.ledger.take_delivery(key):
            answer = self.render(push, result.reply)
            self.ledger.record_answer(key, answer)
            return answer
        self._wait_for(lambda: self.ledger.answer(key) is not None, deadline)
        return self.ledger.answer(key) or SUCCESS

    def render(self, push: Push, fields: dict[str, Any]) -> Answer:
        """Seal reply fields the way the push came: same format, encrypted if it was."""
        nonce = str(secrets.randbelow(10**10))
        body = seal(fields, push, self.account, now=int(time.time()), nonce=nonce)
        return Answer(body, _MIMETYPES[push.body_format])

    @classmethod
    def _wait_for(cls, condition: Callable[[], bool], deadline: float) -> None:
        for _ in cls._polls(deadline):
            if condition():
                return

    @staticmethod
    def _polls(deadline: float) -> Iterator[None]:
        """Yield at once, then after growing pauses (10 to 100 ms) while one fits the deadline."""
        pause = 0.01
        yield
        while time.monotonic() + pause < deadline:
            time.sleep(pause)
            pause = min(pause * 2, 0.1)
            yield

    # -- on the handler's pool thread ---------------------------------------------------

    def _produce(self, push: Push, message: Message, key: PushKey, deadline: float) -> None:
        try:
            reply = self.run_handler(message)
            fields = self._passive_fields(push, message, reply)
            self.ledger.finish(key, Result(fields))
        finally:
            self.leases.release(key)
        if fields is None or self.settings.slow_strategy is SlowStrategy.OFF:
            return
        first_seen = deadline - self.settings.deadline
        if time.monotonic() - first_seen >= self.settings.ledger_ttl:
            # The ledger has forgotten the push and its delivery obligation. No attempt can have
            # answered with this result (WeChat's retries end within seconds): send it late.
            logger.warning("handler for %s outlived WX_LEDGER_TTL; reply sent late", key)
            self.delivery.send(
                message.from_user_name, fields, miniprogram=self._from_miniprogram(push)
            )
        elif self.ledger.gave_up(key):
            self._deliver_late(push, message, key, fields)
        elif time.monotonic() > deadline:
            # Attempt 1 lapsed: a retry should take this result; if none comes, deliver late.
            wait = max(0.0, first_seen + RETRY_WINDOW - time.monotonic())
            self.pool.later(wait, lambda: self._deliver_late(push, message, key, fields))

    def _deliver_late(
        self, push: Push, message: Message, key: PushKey, fields: dict[str, Any]
    ) -> None:
        if self.ledger.take_delivery(key):
            self.ledger.record_answer(key, SUCCESS)
            self.delivery.send(
                message.from_user_name, fields, miniprogram=self._from_miniprogram(push)
            )

    def _from_miniprogram(self, push: Push) -> bool:
        """JSON pushes come only from Mini Programs, whatever WX_ACCOUNT_TYPE says."""
        return (
            self.settings.account_type is AccountType.MINIPROGRAM
            or push.body_format is BodyFormat.JSON
        )

    def run_handler(self, message: Message) -> Reply | None:
        """Call the one matching handler and normalise its result; never raises.

        This is the one place a user's exception is caught: it is logged with its traceback
        and the push is answered "success", because a 500 would make WeChat retry a handler
        that already ran.
        """
        route = self.router.resolve(message)
        if route is None:
            return None
        try:
            with metrics.HANDLER_SECONDS.time():
                value = route()
            return make_reply(value, message)
        except Exception:
            kind = f"event:{message.event}" if isinstance(message, Event) else message.msg_type
            logger.exception(
                "handler %s failed on %s %s",
                route.name,
                kind,
                getattr(message, "msg_id", None) or message.create_time,
            )
            return None

    def _passive_fields(
        self, push: Push, message: Message, reply: Reply | None
    ) -> dict[str, Any] | None:
        """Decide what goes back passively; hand content a Mini Program cannot take to delivery."""
        if isinstance(reply, TransferCustomerServiceReply) and isinstance(message, Event):
            logger.warning(
                "transfer_customer_service returned for event %s: WeChat forwards only user"
                " messages; answered success",
                message.event,
            )
            return None
        fields = None if reply is None else self._fields(message, reply)
        if self._from_miniprogram(push):
            if fields is not None and not isinstance(reply, TransferCustomerServiceReply):
                self.delivery.send(message.from_user_name, fields, miniprogram=True)
                return None
            return fields
        if isinstance(message, Event) and message.event.lower() not in REPLYABLE_EVENTS:
            if fields is not None:
                logger.warning(
                    "reply to event %s dropped: WeChat shows passive replies only to events"
                    " raised from the chat",
                    message.event,
                )
            return None
        return self._with_pending(message, fields)

    def _with_pending(
        self, message: Message, fields: dict[str, Any] | None
    ) -> dict[str, Any] | None:
        """Attach a reply kept from an earlier, too-slow handler to this user's new message.

        It goes out alone when this message's handler answered nothing, joined to the text when
        both are text; otherwise it waits for the next message.
        """
        if fields is not None and fields.get("MsgType") != "text":
            return fields
        kept = self.delivery.take_pending(message.from_user_name)
        if kept is None:
            return fields
        kept = {**kept, "CreateTime": int(time.time())}
        if fields is None:
            return kept
        if kept.get("MsgType") == "text":
            return {**fields, "Content": f"{kept['Content']}\n\n{fields['Content']}"}
        self.delivery.send(message.from_user_name, kept, miniprogram=False)
        return fields

    @staticmethod
    def _fields(message: Message, reply: Reply) -> dict[str, Any]:
        return reply.to_fields(
            to_user_name=message.from_user_name,
            from_user_name=message.to_user_name,
            create_time=int(time.time()),
        )


def build_account(settings: Settings) -> Account:
    """Make the protocol core's view of the account from the settings."""
    crypto = MessageCrypto(settings.aes_key, settings.appid) if settings.aes_key else None
    return Account(token=settings.token, appid=settings.appid, crypto=crypto)
