"""What an account may answer to what: WeChat's rules for passive replies, with no I/O.

A handler returns a reply; whether it can go back as the passive answer of its push depends on
the account and the push (PROTOCOL.md §6): a Mini Program, and every JSON push, takes no passive
content, only "success" or a transfer to customer service; an event shows a passive reply to
the user only when it was raised from the chat; WeChat forwards only user messages to customer
service. :func:`decide` applies those rules and says what the service must do; the service does
it (:mod:`.service`), so the rules can be read and tested on their own.

A text longer than WeChat shows passively (:data:`PASSIVE_TEXT_BYTES`) is cut by
:func:`fit_passive` at a line or sentence break, its first part answered and the rest sent by
the customer-service API, or, with no way to send it, cut short with :data:`CUT_MARKER`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from config import AccountType

from ..wechat.codec import BodyFormat
from ..wechat.messages import Event, Message
from ..wechat.replies import Reply, TransferCustomerServiceReply

Fields = dict[str, Any]

#: WeChat shows no passive text reply over this many UTF-8 bytes: a longer one reaches nobody
#: and the user sees "该公众号提供的服务出现故障" (API.md §2, observed).
PASSIVE_TEXT_BYTES = 2047
#: A customer-service text takes at most this many UTF-8 bytes (API.md §2).
CUSTOM_TEXT_BYTES = 2048
#: Ends a text cut short because the rest has no way to the user.
CUT_MARKER = "…"

#: Where a text is best cut, best first: after a line break, a sentence's end, a space.
_BREAKS = (re.compile(r"\n"), re.compile(r"[。！？!?；;]|\.(?=\s)"), re.compile(r"\s"))

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


@dataclass(frozen=True)
class Decision:
    """What becomes of a handler's reply."""

    #: The passive answer's fields; None answers "success".
    passive: Fields | None
    #: Content that must go out by late delivery instead (a Mini Program's reply).
    late: Fields | None = None
    #: Why content was dropped, for a warning in the log; "" when nothing was.
    dropped: str = ""
    #: Whether a reply kept for this user may join the answer (:func:`merge_kept`).
    may_carry_kept: bool = False


def from_miniprogram(account_type: AccountType, body_format: BodyFormat) -> bool:
    """JSON pushes come only from Mini Programs, whatever WX_ACCOUNT_TYPE says."""
    return account_type is AccountType.MINIPROGRAM or body_format is BodyFormat.JSON


def decide(message: Message, reply: Reply | None, *, miniprogram: bool, now: int) -> Decision:
    """Apply the account's rules to what the handler returned for ``message``.

    :param miniprogram: the push came from a Mini Program (:func:`from_miniprogram`).
    :param now: Unix seconds, the reply's ``CreateTime``.
    """
    if isinstance(reply, TransferCustomerServiceReply) and isinstance(message, Event):
        return Decision(
            None,
            dropped=f"transfer_customer_service returned for event {message.event}: WeChat"
            " forwards only user messages; answered success",
        )
    fields = None if reply is None else fields_of(message, reply, now=now)
    if miniprogram:
        if fields is not None and not isinstance(reply, TransferCustomerServiceReply):
            return Decision(None, late=fields)
        return Decision(fields)
    if isinstance(message, Event) and message.event.lower() not in REPLYABLE_EVENTS:
        if fields is None:
            return Decision(None)
        return Decision(
            None,
            dropped=f"reply to event {message.event} dropped: WeChat shows passive replies"
            " only to events raised from the chat",
        )
    carries = fields is None or fields.get("MsgType") == "text"
    return Decision(fields, may_carry_kept=carries)


def merge_kept(fields: Fields | None, kept: Fields, *, now: int) -> tuple[Fields, Fields | None]:
    """Join a reply kept from an earlier, too-slow handler to this message's answer.

    It goes out alone when this message's handler answered nothing, joined to the text when both
    are text; otherwise the answer stays and the kept reply must be sent another way.

    :return: the answer's fields, and the kept reply if it still has to be sent.
    """
    kept = {**kept, "CreateTime": now}
    if fields is None:
        return kept, None
    if kept.get("MsgType") == "text":
        return {**fields, "Content": f"{kept['Content']}\n\n{fields['Content']}"}, None
    return fields, kept


def fields_of(message: Message, reply: Reply, *, now: int) -> Fields:
    """A reply's wire fields, addressed back to the sender of ``message``."""
    return reply.to_fields(
        to_user_name=message.from_user_name, from_user_name=message.to_user_name, create_time=now
    )


@dataclass(frozen=True)
class Fitted:
    """A passive reply WeChat can show, and what of it must go another way."""

    #: The passive answer's fields; None answers "success".
    passive: Fields | None
    #: Text still to send, after the answer, by the customer-service API; "" when none.
    rest: str = ""
    #: UTF-8 bytes of a text that had to be cut short with :data:`CUT_MARKER`, else 0.
    cut_from: int = 0


def fit_passive(fields: Fields | None, *, can_send_rest: bool) -> Fitted:
    """Make a passive answer's text short enough to be shown.

    :param can_send_rest: the customer-service API can take the rest (an AppSecret is set);
        otherwise the text is cut short and ends with :data:`CUT_MARKER`.
    """
    if fields is None or fields.get("MsgType") != "text":
        return Fitted(fields)
    content = str(fields["Content"])
    size = len(content.encode())
    if size <= PASSIVE_TEXT_BYTES:
        return Fitted(fields)
    if can_send_rest:
        first = split_text(content, PASSIVE_TEXT_BYTES)[0]
        rest = content[len(first) :].lstrip()
        return Fitted({**fields, "Content": first.rstrip()}, rest=rest)
    room = PASSIVE_TEXT_BYTES - len(CUT_MARKER.encode())
    first = split_text(content, room)[0].rstrip()
    return Fitted({**fields, "Content": first + CUT_MARKER}, cut_from=size)


def split_text(text: str, limit: int) -> list[str]:
    """Cut ``text`` into consecutive parts of at most ``limit`` UTF-8 bytes; they join to it.

    Each cut falls after the last line break that fits, else the last sentence end (。！？!?；
    or a full stop before a space), else the last space, so that a part is not less than half
    full; failing those, after the last whole character that fits.
    """
    parts = []
    rest = text
    while len(rest.encode()) > limit:
        head = rest.encode()[:limit].decode(errors="ignore")
        cut = _break(head)
        parts.append(rest[:cut])
        rest = rest[cut:]
    parts.append(rest)
    return parts


def _break(head: str) -> int:
    """Where to end a part that may be at most ``head``: just after the best break in its
    second half, or all of it."""
    for pattern in _BREAKS:
        ends = [match.end() for match in pattern.finditer(head)]
        if ends and ends[-1] > len(head) // 2:
            return ends[-1]
    return len(head) or 1
