"""The custom menu: CLICK by key, VIEW, and a scan-and-wait button.

WX_HANDLERS=examples.menu make run
python -m app simulate --type CLICK --key MENU_HOURS
"""

from __future__ import annotations

import logging

from app import Router, TextReply
from app.wechat.events import ClickEvent, ScanCodeEvent, ViewEvent

router = Router()
logger = logging.getLogger(__name__)


@router.click("MENU_HOURS")
def opening_hours(message: ClickEvent) -> str:
    return "Open every day, 9:00-21:00."


@router.click("MENU_CONTACT")
def contact(message: ClickEvent) -> TextReply:
    return TextReply("Call 400-000-0000 or write to hello@example.com.")


@router.event("CLICK")
def other_buttons(message: ClickEvent) -> str:
    """Any other CLICK key: the more specific key routes above win."""
    return f"That button ({message.event_key}) is not wired up yet."


@router.event("VIEW")
def opened_link(message: ViewEvent) -> None:
    """The user has left the chat for the link: no reply is shown, so only record it."""
    logger.info("menu link %s opened by %s", message.event_key, message.from_user_name)


@router.event("scancode_waitmsg")
def scanned(message: ScanCodeEvent) -> str:
    """A scancode_waitmsg button keeps the chat open for this answer."""
    return f"You scanned: {message.scan_result}"
