"""``python -m app …`` runs the ``wx`` commands, the same as ``flask --app wsgi wx …``."""

from flask.cli import ScriptInfo

from . import create_app
from .cli import wx

wx.main(prog_name="python -m app", obj=ScriptInfo(create_app=create_app))
