"""Native threads under gevent: whether I/O is cooperative, and a value kept per thread.

Under gunicorn.conf.py's gevent worker sockets are cooperative, and a socket belongs to the hub
of the native thread that opened it: a connection kept open by one thread fails on another with
"Cannot switch to a different thread". Handlers, late delivery and the lease keeper run on
native threads of their own (:mod:`app.lifecycle.runner`), so whatever keeps connections open
across calls (the Redis store, the API client) keeps them in a :class:`PerThread`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from gevent import monkey

_T = TypeVar("_T")


def cooperative() -> bool:
    """Whether gevent made blocking I/O cooperative in this process (its gunicorn worker)."""
    return bool(monkey.is_module_patched("socket"))


class PerThread(Generic[_T]):
    """One value per native thread under gevent; one value for every thread otherwise.

    The thread that makes it uses :attr:`shared`, as every thread does without gevent; other
    threads make theirs on first use.
    """

    def __init__(self, make: Callable[[], _T]) -> None:
        self._make = make
        #: The value of the thread that made this, and of every thread without gevent.
        self.shared = make()
        self._home = threading.get_native_id()
        self._others: dict[int, _T] = {}

    def here(self) -> _T:
        """The calling thread's value."""
        native = threading.get_native_id()
        if native == self._home or not cooperative():
            return self.shared
        value = self._others.get(native)
        if value is None:
            value = self._others[native] = self._make()
        return value
