"""The user's code for one push, and what its reply becomes.

The handler and its middleware run inside the app context with ``ctx`` set (:mod:`app.context`);
what they return is made a :class:`~app.wechat.replies.Reply`, and the account's rules
(:mod:`.policy`) turn that into the push's result: the passive reply's fields, content a Mini
Program cannot take sent late, a kept reply joined. This runs on the handler's thread; for a push
no handler takes, only the rules run, on the attempt's own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from config import Settings

from .. import metrics
from ..context import Context, Contexts
from ..middleware import Chain
from ..router import Middleware, Route
from ..wechat.envelope import Push
from ..wechat.messages import Event, Message
from ..wechat.replies import Reply, make_reply
from ..window import Contact
from . import policy
from .clock import Clock
from .delivery import Delivery
from .ledger import Result

logger = logging.getLogger(__name__)


class Handling:
    """Calls an account's handlers and applies its rules to what they return.

    :param background: runs the service's own short work off the handler's thread (what goes
        out by the API, so the passive answer never waits for WeChat's API).
    """

    def __init__(
        self,
        settings: Settings,
        contexts: Contexts,
        delivery: Delivery,
        *,
        background: Callable[[Callable[[], object]], None],
        clock: Clock,
    ) -> None:
        self._settings = settings
        self._contexts = contexts
        self._delivery = delivery
        self._background = background
        self._clock = clock

    def from_miniprogram(self, push: Push) -> bool:
        """Whether ``push`` came from a Mini Program (by setting, or because it was JSON)."""
        return policy.from_miniprogram(self._settings.account_type, push.body_format)

    def run(
        self,
        push: Push,
        message: Message,
        route: Route | None,
        middlewares: tuple[Middleware, ...],
        contact: Contact | None = None,
    ) -> Reply | None:
        """Call the middleware and the one matching handler, normalise the result; never raises.

        They run inside the app context with ``ctx`` set (:mod:`app.context`); an ``async
        def`` one runs on this thread's event loop (:mod:`app.loops`). This is the one place a
        user's exception is caught: it is logged with its traceback, naming the handler or
        middleware it came from, and the push is answered "success", because a 500 would make
        WeChat retry a handler that already ran. The user's session is saved only when the
        handler returned.

        :param route: the handler the account's router chose for ``message``, if any.
        :param middlewares: the router's middleware, outermost first; with no route, at least
            one (a push neither takes never gets here: :meth:`.service.WeChatService._start`).
        :param contact: the user's record as the push's claim read it (:mod:`.window`).
        """
        chain = Chain(middlewares, route, message, self._contexts.loops)
        with self._contexts.open(push, message, contact, chain.handler) as context:
            try:
                with metrics.HANDLER_SECONDS.time():
                    reply = make_reply(chain.run(), message)
            except Exception:
                kind = f"event:{message.event}" if isinstance(message, Event) else message.msg_type
                logger.exception(
                    "%s failed on %s %s",
                    chain.culprit or f"handler {chain.handler}",
                    kind,
                    getattr(message, "msg_id", None) or message.create_time,
                )
                self._finish(context, returned=False)
                return None
            self._finish(context, returned=True)
        return reply

    def _finish(self, context: Context, *, returned: bool) -> None:
        try:
            self._contexts.finish(context, returned=returned)
        except Exception as e:  # the store failed: the reply goes out all the same
            logger.error("session of %s not saved: %s", context.message.push_key, e)

    def outcome(
        self, push: Push, message: Message, reply: Reply | None, kept_replies: bool
    ) -> Result:
        """What the push's attempts answer with: the account's rules applied to the reply
        (:mod:`.policy`), content a Mini Program cannot take sent late, a kept reply joined.

        Runs on the handler's thread; what goes out by the API goes in the background, so the
        passive answer never waits for WeChat's API.
        """
        now = int(self._clock.time())
        openid = message.from_user_name
        decision = policy.decide(message, reply, miniprogram=self.from_miniprogram(push), now=now)
        if decision.dropped:
            logger.warning("%s", decision.dropped)
        if decision.late is not None:
            self._send_later(openid, decision.late, miniprogram=True)
        fields = decision.passive
        if decision.may_carry_kept and kept_replies:
            try:
                kept = self._delivery.take_pending(openid)
            except Exception as e:  # the store failed: the handler's own reply still goes out
                logger.error("kept replies of %s not read: %s", message.push_key, e)
                kept = None
            if kept is not None:
                fields, unsent = policy.merge_kept(fields, kept, now=now)
                if unsent is not None:
                    self._send_later(openid, unsent, miniprogram=False)
        return Result(fields)

    def _send_later(self, openid: str, fields: dict[str, Any], *, miniprogram: bool) -> None:
        self._background(lambda: self._delivery.send(openid, fields, miniprogram=miniprogram))
