"""A conversation over several messages: an order form that asks three questions.

``order`` starts it; the next three messages answer what, how many and where to; ``cancel``
stops it at any point. Where the user is in the form is kept in ``ctx.session``, the user's
session in the shared store, so the conversation goes on whichever worker or host gets the next
message, and two messages sent at once are answered one after the other, never both as the
answer to the same question.

    WX_HANDLERS=examples.order_form make run
    python -m app simulate --content order
    python -m app simulate --content "green tea"
"""

from __future__ import annotations

from app import Router, ctx
from app.wechat.messages import TextMessage

router = Router()

#: The questions, in order, each with the session key its answer goes under.
QUESTIONS = (
    ("item", "What would you like to order?"),
    ("quantity", "How many? (a number from 1 to 99)"),
    ("address", "Where should we deliver it?"),
)
START = "order"
CANCEL = "cancel"


@router.keyword(START)
def start(message: TextMessage) -> str:
    """Begin a new form, dropping any unfinished one."""
    ctx.session["form"] = {}
    ctx.log.info("order form started")
    return f"{QUESTIONS[0][1]} (send '{CANCEL}' to stop)"


@router.keyword(CANCEL)
def cancel(message: TextMessage) -> str:
    if ctx.session.pop("form", None) is None:
        return f"There is nothing to cancel. Send '{START}' to order."
    ctx.log.info("order form cancelled")
    return "Your order is cancelled."


@router.text
def answer(message: TextMessage) -> str:
    """The answer to the form's current question, or a hint when no form is open."""
    form = ctx.session.get("form")
    if form is None:
        return f"Send '{START}' to place an order."
    key, _ = QUESTIONS[len(form)]
    value = message.content.strip()
    if key == "quantity" and not (value.isdigit() and 1 <= int(value) <= 99):
        return "Please send a number from 1 to 99."
    form[key] = int(value) if key == "quantity" else value
    if len(form) < len(QUESTIONS):
        ctx.session["form"] = form
        return QUESTIONS[len(form)][1]
    del ctx.session["form"]
    ctx.session["orders"] = ctx.session.get("orders", 0) + 1
    ctx.log.info("order placed")
    return f"Thank you! {form['quantity']} × {form['item']} will go to {form['address']}."
