"""The command-line options every benchmark shares, so each can run any design of the service.

``--server-args`` goes to gunicorn after gunicorn.conf.py (``-k gevent --worker-connections
2000``), ``--env`` to the service's settings (``WX_HANDLER_THREADS=2000``): the same command
then measures the present design and an alternative side by side.
"""

from __future__ import annotations

import argparse
import shlex


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Add --workers, --server-args and --env."""
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn worker processes of every server (2)"
    )
    parser.add_argument(
        "--server-args",
        default="",
        metavar="ARGS",
        help="more gunicorn arguments for wx-push, e.g. '-k gevent --worker-connections 2000'",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VAL",
        help="a setting for wx-push, e.g. WX_HANDLER_THREADS=2000 (repeatable)",
    )


def server_args(options: argparse.Namespace) -> list[str]:
    """--server-args, split as a shell would."""
    return shlex.split(options.server_args)


def settings(options: argparse.Namespace) -> dict[str, str]:
    """--env as a mapping.

    :raises SystemExit: an entry has no ``=``.
    """
    pairs = {}
    for entry in options.env:
        key, sep, value = entry.partition("=")
        if not sep or not key:
            raise SystemExit(f"--env takes KEY=VAL (got {entry!r})")
        pairs[key] = value
    return pairs


def design(options: argparse.Namespace) -> str:
    """The design of wx-push measured, in one line: what differs from the defaults."""
    extra = " ".join([options.server_args, *options.env]).strip()
    return f"gunicorn.conf.py, {options.workers} workers" + (f", {extra}" if extra else "")
