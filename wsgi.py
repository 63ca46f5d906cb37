"""The WSGI entry point: ``gunicorn wsgi:app`` (settings from the environment and ``.env``).

A setting or ``WX_HANDLERS`` the service cannot start with ends the process with one line on
stderr and exit status 3. A gunicorn worker that exits with 3 before it has booted makes the
master stop altogether ("Worker failed to boot.") instead of starting worker after worker into
the same error, each with a page of traceback around the one sentence that says what to fix.
"""

import logging
import sys

from app import create_app
from app.router import HandlerLoadError
from config import ConfigError, demo_warning, load_settings

#: gunicorn's ``Arbiter.WORKER_BOOT_ERROR``: the master halts when a booting worker exits so.
BOOT_ERROR = 3

try:
    settings = load_settings()
    app = create_app(settings)
except (ConfigError, HandlerLoadError) as e:
    print(f"error: {e}", file=sys.stderr, flush=True)
    raise SystemExit(BOOT_ERROR) from None

warning = demo_warning(settings)
if warning:
    logging.getLogger("app.wsgi").warning(warning)
