"""The demo handlers, used when ``WX_HANDLERS`` is not set.

They make a fresh install answer something visible, so the console setup can be checked from
a phone before any handler is written: text, images and voice come back as they were sent, a
new follower is told this is the demo and how to plug in real handlers, and everything else
gets "success".
"""

from __future__ import annotations

from .router import Router
from .wechat.events import SubscribeEvent
from .wechat.messages import ImageMessage, TextMessage, VoiceMessage
from .wechat.replies import ImageReply, TextReply, VoiceReply

#: Sent to new followers; it names the demo and the setting that replaces it.
WELCOME = (
    "Welcome! This account runs the demo handlers of its WeChat push service: send text, a"
    " picture or a voice message and it comes back to you. To answer with your own code, set"
    " WX_HANDLERS=yourmodule (a module with a `router`) and restart.\n"
    "欢迎关注！本账号正在运行消息推送服务的演示处理程序：发送文字、图片或语音，会原样回复给你。"
    "要使用自己的代码回复，请设置 WX_HANDLERS=你的模块（模块中定义 `router`）并重启服务。"
)

router = Router()


@router.text
def echo_text(message: TextMessage) -> TextReply | None:
    """Send the text back; an empty text gets "success"."""
    return TextReply(message.content) if message.content else None


@router.image
def echo_image(message: ImageMessage) -> ImageReply | None:
    """Send the picture back by its MediaId, which WeChat keeps for 3 days."""
    return ImageReply(message.media_id) if message.media_id else None


@router.voice
def echo_voice(message: VoiceMessage) -> VoiceReply | None:
    """Send the voice message back by its MediaId."""
    return VoiceReply(message.media_id) if message.media_id else None


@router.subscribe
def welcome(message: SubscribeEvent) -> TextReply:
    """Greet a new follower, in English and Chinese."""
    return TextReply(WELCOME)
