"""The demo account every benchmark plays WeChat for, and the service's settings for it.

Standard library only: the wechatpy app imports these values too, and should load nothing of
wx-push.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

TOKEN = "benchToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx1a2b3c4d5e6f7a8b"
PATH = "/wx"


def service_env(workdir: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The service's settings as a user sets them: the account, a SQLite file, the rest default.

    :param workdir: where the SQLite store goes (a fresh directory per run).
    :param extra: ``--env`` settings of the command line, which win.
    """
    return {
        "WX_TOKEN": TOKEN,
        "WX_APPID": APPID,
        "WX_AES_KEY": AES_KEY,
        "WX_STORE_URL": f"sqlite:///{workdir}/wx-push.db",
        **(extra or {}),
    }
