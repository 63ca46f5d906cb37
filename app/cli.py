"""``flask --app wsgi wx …`` (also ``python -m app …``): commands for the people who run it."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from .service import WeChatService


@click.group(help="Commands for the WeChat push service.")
def wx() -> None:
    """Group the service's commands under ``wx``, next to Flask's own."""


@wx.command("info")
@click.option("--host", default="127.0.0.1", show_default=True, help="Where the server listens.")
@click.option("--port", default=8000, show_default=True, help="Port the server listens on.")
@with_appcontext
def info(host: str, port: int) -> None:
    """Print what to paste into the console's server configuration (服务器配置)."""
    service: WeChatService = current_app.extensions["wechat"]
    settings = service.settings
    mode = "安全模式 safe (or 兼容模式 compatible)" if settings.aes_key else "明文模式 plaintext"
    click.echo(
        f"Serving {settings.account_type.value} account on http://{host}:{port}{settings.path}"
    )
    click.echo("Console → 开发 → 基本配置 → 服务器配置 (Mini Program: 开发管理 → 消息推送):")
    click.echo(f"  URL             https://<your domain>{settings.path}   (ports 80/443 only)")
    click.echo(f"  Token           {settings.token}")
    click.echo(f"  EncodingAESKey  {settings.aes_key or '(none: plaintext mode only)'}")
    click.echo(f"  Mode            {mode}")
    click.echo(f"  Handlers        {settings.handlers or 'demo echo handlers (set WX_HANDLERS)'}")
