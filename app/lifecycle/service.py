"""From a verified push to the answer that leaves before the deadline, once per push.

The life of a push (see :mod:`.ledger` for what is stored):

1. The first attempt claims the push and starts its handler on a native thread
   (:mod:`.runner`); later attempts never start another run, they wait for that one (single
   flight): on the same process on the run itself, on any other worker or host by polling the
   ledger. Only when the claim's lease runs out, because the process running the handler died,
   does a retry take the push over and run the handler itself (:mod:`.lease`).
2. An attempt waits for the result until the deadline. With a result it answers passively if
   it is the first to record its answer (an atomic add); otherwise it returns the bytes an
   earlier attempt recorded, so retries get identical bytes. A run that finishes while an
   attempt waits writes nothing but that answer.
3. At the deadline without a result, WX_SLOW_STRATEGY decides: ``retry`` lets attempts 1 and 2
   lapse so WeChat tries again (the connection closes with no answer), the last attempt answers
   "success"; ``customer_service`` answers "success" at once; ``off`` answers "success" and
   drops the late result. After a "success" the result is delivered late, and the push is
   kept in the store's outbox until it is: if the process running the handler dies first,
   another one runs it again and delivers (:meth:`WeChatService.check_owed`).
4. A run that finishes with no attempt waiting records its result for the retries, and if
   WeChat never comes back after a lapse, the process that ran it delivers the result late
   once the retry window has passed.

What goes out late, and when, is :mod:`.late`'s to decide; this module runs the handlers.

What an account may answer to what is decided in :mod:`.policy` and carried out, on the
handler's thread, by :mod:`.handling` (a Mini Program's content goes to late delivery at once, a
kept reply joins), which also calls the user's code.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from config import Settings, SlowStrategy

from .. import metrics
from ..context import Contexts
from ..router import Router
from ..store import Store
from ..wechat.codec import BodyFormat
from ..wechat.crypto import MessageCrypto
from ..wechat.envelope import Account, Mode, Push, seal
from ..wechat.errors import ReusedURL
from ..wechat.identity import PushKey
from ..wechat.messages import Message
from ..wechat.timing import is_last_attempt
from ..window import Contact
from . import policy
from .clock import SYSTEM_CLOCK, Clock
from .delivery import Delivery
from .handling import Handling
from .late import LateReplies, Orphan
from .lease import LeaseKeeper
from .ledger import SUCCESS, Answer, Ledger, Result
from .outbox import CHECK_INTERVAL, Outbox
from .runner import HandlerPool
from .runs import HandlerRun

logger = logging.getLogger(__name__)

_MIMETYPES = {BodyFormat.XML: "application/xml", BodyFormat.JSON: "application/json"}


class _Run:
    """A handler run started by this process, whose future gives the push's result.

    The result (the account's rules applied to the reply, a Mini Program's content sent, a kept
    reply merged) is computed on the handler's thread as soon as the handler returns, once for
    the waiting attempts and the late path alike.
    """

    def __init__(self, future: HandlerRun[Result]) -> None:
        self.future = future
        #: Whether an attempt has already arranged for the result to be settled late.
        self.settling = False


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
        contexts: Contexts,
        outbox: Outbox,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.settings = settings
        self.account = account
        self.router = router
        self.store = store
        self.ledger = ledger
        self.pool = pool
        self.delivery = delivery
        self.leases = leases
        #: What handlers reach besides the message (:mod:`app.context`).
        self.contexts = contexts
        self.outbox = outbox
        #: What deadlines, the retry window and late work are timed by; the pool's too.
        self.clock = clock
        #: Calls the user's code for a push and makes its result (:mod:`.handling`).
        self.handling = Handling(
            settings, contexts, delivery, background=pool.background, clock=clock
        )
        #: Sends late what no attempt answered with, and keeps what is owed (:mod:`.late`).
        self.late = LateReplies(
            settings,
            ledger=ledger,
            delivery=delivery,
            outbox=outbox,
            pool=pool,
            clock=clock,
            from_miniprogram=self.handling.from_miniprogram,
        )
        self._started = False
        #: Runs of this process by push: a retry landing here waits on the run itself, with no
        #: store round trip; entries leave once the push is answered or its result recorded.
        self._runs: dict[PushKey, _Run] = {}

    def close(self) -> None:
        """Finish running handlers and owed deliveries, then release the store.

        Replies this process watches for runs elsewhere stay in the :mod:`.outbox`, where
        another process adopts them.
        """
        self.pool.shutdown()
        self.contexts.close()
        self.leases.close()
        self.store.close()

    def start(self) -> None:
        """Start the periodic look after replies owed late (:meth:`check_owed`), once.

        A process that never answered a push must look too: it may be the one left to adopt
        the replies of a process that died. Inside the worker process, never before a fork.
        """
        if not self._started:
            self._started = True
            self.pool.every(CHECK_INTERVAL, self.check_owed)

    def answer(self, push: Push, message: Message, *, deadline: float) -> Answer | None:
        """Answer ``push`` (parsed as ``message``) before ``deadline``, a monotonic time.

        On the common path (first attempt, handler done in time) this is two store round trips:
        the claim, and the atomic record of the answer; a plaintext push adds its URL's tie.

        :raises ReusedURL: a plaintext push on a signed URL that carried another push.

        :return: the answer, or None when this attempt should lapse so that WeChat retries.
        """
        arrived = self.clock.time()
        key = message.push_key
        self.start()
        if push.mode is Mode.PLAINTEXT:
            self._bind_url(push, key)
        claim = self.ledger.begin(key, peek=self.delivery.kept_key(message.from_user_name))
        attempt = claim.attempt
        # Every attempt notes the customer-service window the message opened: the process that
        # saw attempt 1 writes it only after a while, and if it dies first, the retry that takes
        # the push over must still know it may send the late reply.
        miniprogram = self._from_miniprogram(push)
        contact = self.delivery.saw(message, claim.peeked, miniprogram=miniprogram)
        # A run of this process for a push the store calls new: the store failed over, or its
        # file was replaced, after the first claim. Wait on that run rather than start another.
        run = self._runs.get(key)
        if attempt == 1 and run is None:
            run = self._start(push, message, key, contact=contact)
        elif attempt > 1:
            metrics.DEDUP_HITS.inc()
            earlier = self.ledger.answer(key)
            if earlier is None and self.ledger.gave_up(key):
                earlier = SUCCESS  # as the attempt that gave up; the reply goes out late
            if earlier is not None:
                logger.info("retry %d of %s answered from the ledger", attempt, key)
                return earlier
        result: Result | None = None
        if run is None:
            followed = self._follow(push, message, key, attempt, deadline, contact)
            if isinstance(followed, Answer):
                return followed
            result, run = (followed, None) if isinstance(followed, Result) else (None, followed)
        if run is not None:
            result = self._wait(run, push, message, deadline)
            if result is None:
                self._settle_later(run, push, message, key, deadline)
        if result is not None:
            return self._answer_with(push, key, result)
        return self._at_deadline(push, message, key, attempt, arrived)

    def _bind_url(self, push: Push, key: PushKey) -> None:
        """Refuse a plaintext push whose signed URL already carried another push.

        In plaintext mode the signature covers the URL, not the body: whoever read one signed
        URL (in a proxy's log, say) could post any message with it while its timestamp is
        within WX_TIMESTAMP_TOLERANCE. Tied to the first push it carried, the URL lets them
        only send that push again, which the ledger answers as a retry. The tie lasts as long
        as the URL's timestamp can pass (the ledger's TTL when the check is off).

        :raises ReusedURL: the URL carried another push.
        """
        tolerance = self.settings.timestamp_tolerance
        ttl = 2 * tolerance + 60 if tolerance else self.settings.ledger_ttl
        if not self.ledger.bind_url(key, timestamp=push.timestamp, nonce=push.nonce, ttl=ttl):
            raise ReusedURL(
                "plaintext push refused: its signed URL already carried another push (a forged"
                " body on a replayed URL?); safe mode (安全模式) signs the body too"
            )

    def _start(self, push: Push, message: Message, key: PushKey, *, contact: Contact) -> _Run:
        """Start the handler on a native thread, under this process's lease.

        A push no handler and no middleware takes (a LOCATION report with no handler for it,
        say) takes no thread and no lease either: its result, the account's rules applied to no
        reply (a kept reply joins), is ready at once.

        :param contact: the user's record as the claim read it, with what this push opened.
        """
        kept_replies = bool(contact.kept)
        route = self.router.resolve(message)
        if route is None and not self.router.middlewares:
            return _Run(
                HandlerRun.finished(self.handling.outcome(push, message, None, kept_replies))
            )

        def work() -> Result:
            reply = self.handling.run(push, message, route, self.router.middlewares, contact)
            return self.handling.outcome(push, message, reply, kept_replies)

        self.leases.hold(key)
        run = _Run(self.pool.run(work))
        run.future.add_done_callback(lambda _: self.leases.release(key))
        self._runs[key] = run
        return run

    def _wait(self, run: _Run, push: Push, message: Message, deadline: float) -> Result | None:
        """The run's result if it is ready by the deadline, else None."""
        try:
            return self.pool.wait(run.future, max(0.0, deadline - self.clock.monotonic()))
        except FutureTimeout:
            return None

    def _follow(
        self,
        push: Push,
        message: Message,
        key: PushKey,
        attempt: int,
        deadline: float,
        contact: Contact,
    ) -> Answer | Result | _Run | None:
        """Wait for a run another process started; take the push over if that process died.

        :param contact: the user's record as this attempt's claim read it, for a takeover.

        :return: the answer an attempt elsewhere gave; or the result, when the run finished
            after its attempt stopped waiting; or the run this attempt started after taking
            the push over (to be waited on like a run of its own); None at the deadline.
        """
        for _ in _polls(self.clock, deadline):
            answer = self.ledger.answer(key)
            if answer is not None:
                return answer
            result = self.ledger.result(key)
            if result is not None:
                return result
            if self.ledger.take_over(key):
                result = self.ledger.result(key)  # it may have finished just before
                if result is not None:
                    return result
                metrics.TAKEOVERS.inc()
                logger.warning(
                    "the process running %s stopped; attempt %d runs the handler again",
                    key,
                    attempt,
                )
                return self._start(push, message, key, contact=contact)
        return None

    def _at_deadline(
        self, push: Push, message: Message, key: PushKey, attempt: int, arrived: float
    ) -> Answer | None:
        """Lapse for a retry, or answer "success" and leave the reply to late delivery.

        :param arrived: the attempt's Unix time of arrival: whether it is WeChat's last
            depends on when it came, not on how long it then waited.
        """
        metrics.DEADLINE_MISSES.inc()
        strategy = self.settings.slow_strategy
        if attempt == 1 and strategy is not SlowStrategy.OFF:
            openid = message.from_user_name
            self.pool.background(lambda: self.delivery.typing(openid))
        last = is_last_attempt(attempt, create_time=message.create_time, now=arrived)
        if strategy is SlowStrategy.RETRY and not last:
            logger.info("handler for %s still running; attempt %d lapses for a retry", key, attempt)
            return None
        if strategy is SlowStrategy.OFF:
            logger.warning("handler for %s missed the deadline; answered success", key)
            return SUCCESS
        self.ledger.give_up(key)
        answer = self.ledger.answer(key)
        if answer is not None:
            return answer
        result = self.ledger.result(key)
        if result is not None:
            return self._answer_with(push, key, result)
        logger.warning("handler for %s missed the deadline; its reply will be sent late", key)
        self.pool.background(lambda: self.late.owe(key, push))
        return SUCCESS

    def _answer_with(self, push: Push, key: PushKey, result: Result) -> Answer:
        """Answer with ``result`` if this attempt is the one that delivers it.

        Recording the answer is the atomic claim of delivery: an attempt that loses the race
        returns the bytes the winner recorded, so retries get identical bytes.
        """
        self._runs.pop(key, None)
        fitted = policy.fit_passive(result.reply, can_send_rest=self.delivery.can_send)
        answer = SUCCESS if fitted.passive is None else self.render(push, fitted.passive)
        if self.ledger.claim_answer(key, answer):
            self.delivery.follow(str(push.fields.get("FromUserName", "")), fitted)
            return answer
        return self.ledger.answer(key) or SUCCESS

    def render(self, push: Push, fields: dict[str, Any]) -> Answer:
        """Seal reply fields the way the push came: same format, encrypted if it was."""
        nonce = str(secrets.randbelow(10**10))
        body = seal(fields, push, self.account, now=int(self.clock.time()), nonce=nonce)
        return Answer(body, _MIMETYPES[push.body_format])

    # -- after the deadline: the handler finishes without an attempt waiting ---------------

    def _settle_later(
        self, run: _Run, push: Push, message: Message, key: PushKey, deadline: float
    ) -> None:
        """Once the run finishes, record its result for retries and deliver it late if owed.

        Registered by the attempt that stopped waiting, so a run finished in time costs no
        store write beyond the answer itself.
        """
        if run.settling:  # an earlier attempt of this process arranged it already
            return
        run.settling = True
        first_seen = deadline - self.settings.deadline

        def settle() -> None:
            result = run.future.result()
            try:
                self.ledger.finish(key, result)
            finally:
                self._runs.pop(key, None)
            self.late.settle(push, message, key, result, first_seen)

        run.future.add_done_callback(lambda _: self.pool.background(settle))

    def check_owed(self) -> None:
        """Look after the replies owed late that this process watches (:mod:`.late`), and run
        again here the handlers whose process died before they finished; their replies go out
        late when done."""
        for orphan in self.late.orphans(self._runs):
            try:
                self._run_orphan(orphan)
            except Exception:  # one push's trouble must not stop the runs of the others
                logger.exception("an owed late reply could not be taken over")

    def _run_orphan(self, orphan: Orphan) -> None:
        push, message, key = orphan.push, orphan.message, orphan.key
        metrics.TAKEOVERS.inc()
        logger.warning(
            "the process running %s stopped after its answer; the handler runs again here and"
            " its reply goes out late",
            key,
        )
        contact = self.delivery.saw(message, None, miniprogram=self._from_miniprogram(push))
        run = self._start(push, message, key, contact=contact)
        first_seen = self.clock.monotonic() - orphan.age
        self._settle_later(run, push, message, key, first_seen + self.settings.deadline)

    def _from_miniprogram(self, push: Push) -> bool:
        return self.handling.from_miniprogram(push)


def _polls(clock: Clock, deadline: float) -> Iterator[None]:
    """Yield at once, then after growing pauses (20 to 250 ms), the last one cut to end at the
    deadline: a run finishing in the final moments is still seen.

    Only attempts following a run on another process poll; a run of this process is waited on
    directly.
    """
    pause = 0.02
    yield
    while (left := deadline - clock.monotonic()) > 0.005:
        clock.sleep(min(pause, left - 0.005))
        pause = min(pause * 2, 0.25)
        yield


def build_account(settings: Settings) -> Account:
    """Make the protocol core's view of the account from the settings."""
    crypto = MessageCrypto(settings.aes_key, settings.appid) if settings.aes_key else None
    return Account(token=settings.token, appid=settings.appid, crypto=crypto)
