"""The console: the ``wx`` commands for the people who run the service, and what they drive.

``flask --app wsgi wx …``, ``python -m app …`` and ``wx-push …`` all run :data:`wx`.
Modules: :mod:`.commands` (the click group: ``keygen``, ``info``, ``check``, ``simulate``,
``menu``, ``qrcode``), :mod:`.simulator` (plays WeChat against any URL over real HTTP) and
:mod:`.probe` (``check``'s handshake, each failure explained). Nothing in the service imports
this package; only the entry points above do.
"""

from .commands import wx as wx
