"""Which account the work at hand is for, so log lines and metrics can name it.

One process serves several accounts, and a push's work runs in more than one place: the request
that answers it, the native thread that runs its handler, the background work that delivers a
late reply. Each of them enters the account's scope (the view for its request, the account's
handler pool for everything it runs), and :mod:`app.logs` and :mod:`app.metrics` read the name
from here, so the layers in between count and log without passing the name along.

A context variable keeps it: every thread and greenlet has its own, so two accounts' work never
sees the other's name.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TypeVar

_T = TypeVar("_T")

_account: ContextVar[str] = ContextVar("wx_account", default="")


def account() -> str:
    """The name of the account the current work is for; "" outside any account's work."""
    return _account.get()


class serving:
    """Do the work of the ``with`` block for the account ``name``.

    A class rather than a ``@contextmanager`` generator: a push enters it several times (its
    request, its handler's thread, its lease), and the generator's machinery took 1.8 µs each
    time, this 0.6.
    """

    __slots__ = ("_name", "_token")
    _token: Token[str]

    def __init__(self, name: str) -> None:
        self._name = name

    def __enter__(self) -> None:
        self._token = _account.set(self._name)

    def __exit__(self, *exc_info: object) -> None:
        _account.reset(self._token)


def bound(name: str, work: Callable[[], _T]) -> Callable[[], _T]:
    """``work`` made to run for the account ``name``, on whichever thread calls it."""

    def run() -> _T:
        with serving(name):
            return work()

    return run
