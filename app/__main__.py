"""``python -m app …`` and the ``wx-push`` command run the ``wx`` commands.

They are the same commands as ``flask --app wsgi wx …``, without needing valid settings to
start: ``keygen`` works before there is a ``.env``. ``wx-push`` is installed by
``pip install -e .`` (pyproject.toml's ``[project.scripts]``).
"""

from flask.cli import ScriptInfo

from . import create_app
from .console import wx


def main() -> None:
    """Run a command; click names the program after how it was started."""
    wx.main(obj=ScriptInfo(create_app=create_app))


if __name__ == "__main__":
    main()
