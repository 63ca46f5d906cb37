"""The common part of every push: the :class:`Message` and :class:`Event` bases and their registry.

User messages (:mod:`.messages`) and events (:mod:`.events`) both extend these bases; keeping the
bases, the registry their subclasses fill and the classes for unknown types here lets each of
those modules grow on its own without importing the other. :func:`message_class` and
:func:`event_class` are how :func:`.messages.parse_message` finds a push's class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .fields import identifier, integer, read, required_text, text
from .identity import PushKey, content_digest

#: Known message classes by lowercase ``MsgType``, filled by ``Message.__init_subclass__``.
_MESSAGES: dict[str, type[Message]] = {}
#: Known event classes by lowercase ``Event``, filled the same way.
_EVENTS: dict[str, type[Event]] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Base of every push: the common fields of PROTOCOL.md §5.

    Subclasses register by declaring ``MSG_TYPE`` (events: ``EVENT``) as a class variable, not
    as a class keyword: ``slots=True`` re-creates each class without its keywords, and reading
    ``cls.__dict__`` in ``__init_subclass__`` registers that final class.
    """

    #: The ``MsgType`` a subclass stands for; "" for bases.
    MSG_TYPE: ClassVar[str] = ""
    #: True for what a user sent (every push but events): it takes news of 1 article only and
    #: may be handed to customer service (PROTOCOL.md §6).
    is_user_message: ClassVar[bool] = True

    #: ``ToUserName``: the account's original ID (``gh_…``).
    to_user_name: str
    #: ``FromUserName``: the user's OpenID.
    from_user_name: str
    #: ``CreateTime``: Unix seconds.
    create_time: int
    #: ``MsgType`` as on the wire.
    msg_type: str
    #: Every field as received, known or not.
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __init_subclass__(cls) -> None:
        event = cls.__dict__.get("EVENT")
        msg_type = cls.__dict__.get("MSG_TYPE")
        if event and issubclass(cls, Event):
            _EVENTS[event.lower()] = cls
        elif msg_type:
            _MESSAGES[msg_type.lower()] = cls

    @property
    def push_key(self) -> PushKey:
        """The push's identity for the ledger (PROTOCOL.md §6): its message id when it has one,
        else its CreateTime and a digest of all its fields, so that retries of one push share
        a key and two pushes of one user in one second do not. Every key carries the
        CreateTime as well, which attempts repeat unchanged, to keep the store's keys in
        order (:attr:`PushKey.stored`)."""
        msg_id = getattr(self, "msg_id", None)
        if msg_id is not None and self.is_user_message:
            return PushKey("msg", self.from_user_name, str(msg_id), self.create_time)
        kind = "push" if self.is_user_message else "event"
        detail = f"{self.create_time}:{content_digest(self.raw)}"
        return PushKey(kind, self.from_user_name, detail, self.create_time)

    @classmethod
    def _kind_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor arguments of a family (messages, events), read from the wire."""
        return {}

    @classmethod
    def _own_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Constructor arguments of this type only, read from the wire."""
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownMessage(Message):
    """A ``MsgType`` this package does not know; ``raw`` has it all (PROTOCOL.md §5)."""

    msg_id: int | str | None = None
    msg_data_id: int | None = None
    idx: int | None = None

    @classmethod
    def _kind_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {"msg_id": message_id(fields), **read(fields, integer, "MsgDataId", "Idx")}


# -- events (PROTOCOL.md §5) -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(Message):
    """Base of every push with ``MsgType=event`` (PROTOCOL.md §5, events).

    Subclasses register under ``EVENT``, looked up in lowercase because WeChat sends
    ``subscribe`` but ``SCAN``, ``LOCATION`` and ``CLICK``.
    """

    #: The ``Event`` a subclass stands for, spelled as WeChat documents it.
    EVENT: ClassVar[str] = ""
    is_user_message: ClassVar[bool] = False

    #: ``Event`` as on the wire.
    event: str
    #: ``EventKey``; "" when absent.
    event_key: str = ""

    @classmethod
    def _kind_fields(cls, fields: Mapping[str, Any]) -> dict[str, Any]:
        return {"event": required_text(fields, "Event"), **read(fields, text, "EventKey")}


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(Event):
    """An ``Event`` this package does not know; ``raw`` has it all (PROTOCOL.md §5)."""


def message_id(fields: Mapping[str, Any]) -> int | str | None:
    """A user message's id, spelled ``MsgId`` or, as WxJava has seen it, ``MsgID``."""
    value = fields.get("MsgId")
    return identifier(fields.get("MsgID") if value is None else value)


# -- lookup ------------------------------------------------------------------------------


def message_class(msg_type: str) -> type[Message]:
    """The class registered for a ``MsgType``, in any case; :class:`UnknownMessage` if none.

    Only classes already defined are known: :mod:`.messages` defines the user messages.
    """
    return _MESSAGES.get(msg_type.lower(), UnknownMessage)


def event_class(event: str) -> type[Event]:
    """The class registered for an ``Event``, in any case; :class:`UnknownEvent` if none.

    Only classes already defined are known, so call it through :mod:`.events`, which defines
    them all and exposes this function for that reason.
    """
    return _EVENTS.get(event.lower(), UnknownEvent)
