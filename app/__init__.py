"""A WeChat message push (消息推送) server for Official Accounts and Mini Programs.

Handler authors import what they need from here::

    from app import Router, TextReply

    router = Router()

    @router.text
    def echo(message):
        return TextReply(message.content)
"""

from __future__ import annotations

import hashlib

from flask import Flask

from config import Settings, load_settings

from . import demo, logs, monitoring
from .api import WeChatAPI
from .cli import wx
from .delivery import Delivery
from .lease import LeaseKeeper
from .ledger import Ledger
from .router import Router as Router
from .router import load_router
from .runner import HandlerPool
from .service import WeChatService, build_account
from .store import open_shared_store
from .views import bp
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
from .wechat.timing import LEASE_RENEWAL


def create_app(settings: Settings | None = None) -> Flask:
    """Build the service for one account.

    Nothing happens at import time; this opens the store and starts no thread until a push
    arrives. Call ``app.extensions["wechat"].close()`` to finish pending work (gunicorn's
    ``worker_exit`` hook does).

    :param settings: tests pass their own; by default they are read from the environment and
        ``.env`` (see ``.env.example``).
    :raises ConfigError: a setting is missing or invalid.
    :raises HandlerLoadError: WX_HANDLERS names a module or attribute that cannot be loaded.
    """
    settings = settings if settings is not None else load_settings()
    logs.configure(settings.log_format)
    router = load_router(settings.handlers) if settings.handlers else demo.router
    store = open_shared_store(settings.store_url)
    namespace = (
        settings.appid or "token-" + hashlib.sha256(settings.token.encode()).hexdigest()[:12]
    )
    api = (
        WeChatAPI(
            settings.appid,
            settings.appsecret,
            store,
            base_url=settings.api_base,
            token_endpoint=settings.token_endpoint.value,
        )
        if settings.appsecret
        else None
    )
    ledger = Ledger(store, namespace=namespace, ttl=settings.ledger_ttl)
    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    app.extensions["wechat"] = WeChatService(
        settings,
        build_account(settings),
        router,
        store=store,
        ledger=ledger,
        pool=HandlerPool(settings.handler_threads),
        delivery=Delivery(store, namespace=namespace, api=api),
        leases=LeaseKeeper(ledger, interval=LEASE_RENEWAL),
    )
    app.register_blueprint(bp, url_prefix=settings.path)
    monitoring.init_app(app, metrics=settings.metrics)
    app.cli.add_command(wx)
    return app
