"""A welcome that knows where the follower came from: parametric QR codes.

A follow through a QR code made with scene "42" arrives as ``subscribe`` with EventKey
``qrscene_42`` (the :class:`SubscribeEvent` gives ``scene == "42"``); an existing follower who
scans it arrives as ``SCAN`` with EventKey ``42``.

    WX_HANDLERS=examples.welcome make run
    python -m app simulate --type subscribe --key qrscene_summer
"""

from __future__ import annotations

import logging

from app import Router
from app.wechat.events import ScanEvent, SubscribeEvent
from app.wechat.messages import Event

router = Router()
logger = logging.getLogger(__name__)

CAMPAIGNS = {"summer": "our summer campaign", "store": "our shop window"}


@router.subscribe
def welcome(message: SubscribeEvent) -> str:
    """Greet new followers, naming the campaign whose QR code they scanned."""
    if not message.scene:
        return "Welcome! Send 'help' to see what I can do."
    where = CAMPAIGNS.get(message.scene, f"code {message.scene}")
    return f"Welcome! You found us through {where}."


@router.event("SCAN")
def scanned_again(message: ScanEvent) -> str:
    """A follower scanned a parametric QR code again."""
    return f"Welcome back! (code {message.scene})"


@router.event("unsubscribe")
def goodbye(message: Event) -> None:
    """Nobody sees a reply to unsubscribe: clean up and answer "success"."""
    logger.info("follower %s left", message.from_user_name)
