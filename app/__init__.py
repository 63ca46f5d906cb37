"""A WeChat message push (消息推送) server for Official Accounts and Mini Programs.

Handler authors import what they need from here::

    from app import Router, TextReply

    router = Router()

    @router.text
    def echo(message):
        return TextReply(message.content)
"""

from __future__ import annotations

from flask import Flask

from config import Settings, load_settings

from . import logs
from .console import wx
from .context import ctx as ctx
from .extension import Accounts as Accounts
from .extension import WeChatPush as WeChatPush
from .lifecycle.clock import SYSTEM_CLOCK, Clock
from .router import Router as Router
from .wechat.messages import Event as Event
from .wechat.messages import Message as Message
from .wechat.replies import Article as Article
from .wechat.replies import ImageReply as ImageReply
from .wechat.replies import MusicReply as MusicReply
from .wechat.replies import NewsReply as NewsReply
from .wechat.replies import Reply as Reply
from .wechat.replies import TextReply as TextReply
from .wechat.replies import TransferCustomerServiceReply as TransferCustomerServiceReply
from .wechat.replies import VideoReply as VideoReply
from .wechat.replies import VoiceReply as VoiceReply


def create_app(settings: Settings | None = None, *, clock: Clock = SYSTEM_CLOCK) -> Flask:
    """Build the service: every configured account on a Flask app of its own.

    Each account answers at its path (WX_PATH for the default account), beside /healthz and,
    unless WX_METRICS is off, /metrics. Nothing happens at import time; this opens the store and
    starts no thread until a push arrives. Call ``app.extensions["wechat"].close()`` to finish
    pending work (gunicorn's ``worker_exit`` hook does). To add the service to an application
    you already have, use :class:`WeChatPush` instead.

    :param settings: tests pass their own; by default they are read from the environment and
        ``.env`` (see ``.env.example``).
    :param clock: what deadlines and late work are timed by; tests of slow handlers pass a
        :class:`~app.testing.ManualClock`.
    :raises ConfigError: a setting is missing or invalid.
    :raises HandlerLoadError: WX_HANDLERS names a module or attribute that cannot be loaded.
    """
    settings = settings if settings is not None else load_settings()
    logs.configure(settings.log_format)
    app = Flask(__name__, static_folder=None)
    WeChatPush(app, settings=settings, healthz=True, metrics=settings.metrics, clock=clock)
    app.cli.add_command(wx)
    return app
