"""A fuzz case: drawn from ``(seed, index)`` alone, so any case of any run can be made again.

Each case picks a family, a mode (plaintext, compatible, safe) and a format (XML, JSON), and
keeps the message it carries apart from how it is carried: shrinking cuts the message and
carries what is left, signed with a fresh timestamp, so a smaller input still reaches the
same code.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from app.wechat.codec import BodyFormat
from app.wechat.envelope import Mode

from .hostile import hostile_case
from .mutations import mutated_push
from .queries import query_case
from .wire import Carrier, Request, Wire

#: The case families and how often each is drawn, in percent.
FAMILIES = {"mutate": 55, "query": 15, "hostile": 30}


@dataclass(frozen=True)
class Case:
    """One input for the service, and what it is."""

    seed: int
    index: int
    #: ``mutate``, ``query`` or ``hostile``.
    family: str
    #: What was done, e.g. ``text: MsgId=digits4301``.
    label: str
    mode: Mode
    body_format: BodyFormat
    #: The message before signing and encryption: what shrinking cuts.
    message: bytes
    carrier: Carrier

    @property
    def name(self) -> str:
        """``seed:index``, what ``--replay`` takes."""
        return f"{self.seed}:{self.index}"

    def request(self, message: bytes | None = None) -> Request:
        """The request carrying this case's message, or ``message`` in its place, signed now."""
        return self.carrier(self.message if message is None else message)


def make_case(
    seed: int, index: int, wire: Wire, families: tuple[str, ...] = tuple(FAMILIES)
) -> Case:
    """Case ``index`` of the run with ``seed``, drawn from ``families`` only."""
    rng = random.Random(seed << 40 | index)
    family = rng.choices(families, [FAMILIES[f] for f in families])[0]
    mode = rng.choice(list(Mode))
    body_format = rng.choice(list(BodyFormat))
    carrier: Carrier
    if family == "mutate":
        label, message = mutated_push(rng, body_format)
        carrier = wire.carrier(mode, body_format, rng)
    elif family == "query":
        label, message, carrier = query_case(rng, mode, body_format, wire)
    else:
        label, message, carrier = hostile_case(rng, mode, body_format, wire)
    return Case(seed, index, family, label, mode, body_format, message, carrier)
