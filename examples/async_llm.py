"""An ``async def`` handler that asks an LLM over HTTP, remembering the conversation.

It calls an OpenAI-style chat completions API with ``httpx.AsyncClient``: LLM_URL (e.g.
``https://api.openai.com/v1/chat/completions``, or a local server), LLM_API_KEY and LLM_MODEL.
The last turns of the conversation are kept in the user's session, so the model sees what was
said before, on whichever worker the next message lands.

An async handler runs on its handler thread's own event loop, so waiting for the model blocks
nothing else; a slow answer is handled exactly as for a plain handler (WX_SLOW_STRATEGY: by
default WeChat's retries buy about 15 s, then the reply goes by the customer-service API with
WX_APPSECRET, or with the user's next message).

    LLM_URL=http://127.0.0.1:8080/v1/chat/completions WX_HANDLERS=examples.async_llm make run
    python -m app simulate --content "What is WeChat?"
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from app import Router, ctx
from app.wechat.messages import TextMessage

router = Router()

#: Turns of the conversation kept (a question and its answer are two).
HISTORY = 10
SYSTEM = "You answer in the user's language, briefly: a chat message, not an essay."
SORRY = "Sorry, I cannot think right now. Please ask again in a minute."


async def ask(messages: list[dict[str, str]]) -> str:
    """The model's answer to a conversation, from the chat completions API."""
    headers = {"Authorization": f"Bearer {os.environ.get('LLM_API_KEY', '')}"}
    body = {"model": os.environ.get("LLM_MODEL", "gpt-4o-mini"), "messages": messages}
    url = os.environ.get("LLM_URL", "http://127.0.0.1:8080/v1/chat/completions")
    async with httpx.AsyncClient(timeout=60) as client:  # a model takes seconds: one per call
        response = await client.post(url, json=body, headers=headers)
    response.raise_for_status()
    answer: Any = response.json()["choices"][0]["message"]["content"]
    return str(answer).strip()


@router.text
async def chat(message: TextMessage) -> str:
    history: list[dict[str, str]] = ctx.session.get("history", [])
    question = {"role": "user", "content": message.content}
    try:
        answer = await ask([{"role": "system", "content": SYSTEM}, *history, question])
    except (httpx.HTTPError, KeyError, IndexError, ValueError) as e:
        ctx.log.warning("the model did not answer: %s", type(e).__name__)
        return SORRY
    reply = {"role": "assistant", "content": answer}
    ctx.session["history"] = [*history, question, reply][-HISTORY:]
    return answer
