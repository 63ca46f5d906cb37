"""The service as a Flask extension: every configured account, on any Flask app.

::

    from app import WeChatPush
    from config import load_settings

    wx = WeChatPush()
    wx.init_app(app, settings=load_settings(), url_prefix="/hooks/wechat")

:func:`app.create_app` does this on a Flask app of its own. On an application the user already
has, ``init_app`` adds only what it is asked for: one route per account under ``url_prefix``,
``app.extensions["wechat"]``, and /healthz and /metrics under the prefix when ``healthz`` or
``metrics`` is true. It sets no configuration (each request's body limit is set in the view),
installs no log handler, and registers no command.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

from flask import Flask

from config import DEFAULT_ACCOUNT, Settings, load_settings

from . import demo, monitoring, scope
from .clients import Clients
from .context import Contexts
from .lifecycle.clock import SYSTEM_CLOCK, Clock
from .lifecycle.delivery import Delivery
from .lifecycle.lease import LeaseKeeper
from .lifecycle.ledger import Ledger
from .lifecycle.outbox import Outbox
from .lifecycle.runner import HandlerPool
from .lifecycle.runs import HandlerRun
from .lifecycle.service import WeChatService, build_account
from .loops import Loops
from .router import HandlerLoadError, Router, load_router
from .sessions import Sessions
from .store import Store, open_shared_store
from .views import bp
from .wechat.identity import PushKey
from .wechat.timing import LEASE_RENEWAL

_T = TypeVar("_T")
#: A Flask app's ``app_context`` method, or anything else that makes a context to run in.
AppContext = Callable[[], AbstractContextManager[object]]


class Accounts(Mapping[str, WeChatService]):
    """The accounts one Flask app serves, by name: a :class:`WeChatService` each, on one store.

    It is ``app.extensions["wechat"]``. :meth:`close` finishes them all, as gunicorn's
    ``worker_exit`` hook does; call it when the application stops.
    """

    def __init__(
        self, services: Mapping[str, WeChatService], paths: Mapping[str, str], store: Store
    ) -> None:
        self._services = dict(services)
        #: The URL path each account answers at, prefix included.
        self.paths = dict(paths)
        #: The store the accounts share.
        self.store = store

    def __getitem__(self, name: str) -> WeChatService:
        return self._services[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._services)

    def __len__(self) -> int:
        return len(self._services)

    def service(self, name: str | None = None) -> WeChatService:
        """The account called ``name``; None for the default account, or the only one.

        :raises KeyError: no such account, or None while several accounts and no default are
            served; the message names the accounts.
        """
        if name is None and len(self) == 1:
            return next(iter(self._services.values()))
        try:
            return self._services[name or DEFAULT_ACCOUNT]
        except KeyError:
            raise KeyError(
                f"no account {name or DEFAULT_ACCOUNT!r}; the app serves {', '.join(self)}"
            ) from None

    def start(self) -> None:
        """Start every account's periodic work now, which otherwise starts with its first push:
        the look after replies owed late, which adopts those of processes that died
        (:mod:`app.lifecycle.outbox`). gunicorn's ``post_worker_init`` hook calls it."""
        for service in self.values():
            service.start()

    def close(self) -> None:
        """Finish every account's running handlers and owed deliveries, then release the store.

        All handler pools finish before any service closes: the accounts share the store, and
        closing it under one account would fail another's late deliveries.
        """
        for service in self.values():
            service.pool.shutdown()
        for service in self.values():
            service.close()


class WeChatPush:
    """The Flask extension: ``WeChatPush(app, ...)``, or ``WeChatPush()`` and :meth:`init_app`
    later, in an application factory."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        settings: Settings | None = None,
        url_prefix: str = "",
        healthz: bool = False,
        metrics: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if app is not None:
            self.init_app(
                app,
                settings=settings,
                url_prefix=url_prefix,
                healthz=healthz,
                metrics=metrics,
                clock=clock,
            )

    def init_app(
        self,
        app: Flask,
        *,
        settings: Settings | None = None,
        url_prefix: str = "",
        healthz: bool = False,
        metrics: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> Accounts:
        """Serve every account of ``settings`` on ``app``, each at ``url_prefix`` + its path.

        :param settings: by default read from the environment and ``.env``
            (:func:`config.load_settings`); ``app.config`` is neither read nor written.
        :param url_prefix: where the accounts' paths start, e.g. ``/hooks/wechat`` puts the
            default account (WX_PATH=/wx) at ``/hooks/wechat/wx``.
        :param healthz: serve ``<url_prefix>/healthz``.
        :param metrics: serve ``<url_prefix>/metrics``.
        :param clock: what deadlines and late work are timed by: the system's, or in a test a
            :class:`~app.testing.ManualClock`, which plays slow handlers without sleeping.
        :return: the accounts, also at ``app.extensions["wechat"]``.
        :raises ConfigError: a setting is missing or invalid.
        :raises HandlerLoadError: an account's WX_HANDLERS cannot be loaded.
        """
        if "wechat" in app.extensions:
            raise RuntimeError("WeChatPush is already set up on this app; call init_app once")
        if url_prefix and (not url_prefix.startswith("/") or url_prefix.endswith("/")):
            raise ValueError(f"url_prefix must start with '/' and not end with one: {url_prefix!r}")
        settings = settings if settings is not None else load_settings()
        accounts = open_accounts(settings, url_prefix, app_context=app.app_context, clock=clock)
        app.extensions["wechat"] = accounts
        for name, path in accounts.paths.items():
            blueprint = "wechat" if name == DEFAULT_ACCOUNT else f"wechat_{name}"
            app.register_blueprint(
                bp, name=blueprint, url_prefix=path, url_defaults={"account": name}
            )
        monitoring.init_app(app, prefix=url_prefix, healthz=healthz, metrics=metrics)
        return accounts


def open_accounts(
    settings: Settings,
    url_prefix: str = "",
    *,
    app_context: AppContext = nullcontext,
    clock: Clock = SYSTEM_CLOCK,
) -> Accounts:
    """Open the store and build a service for every account of ``settings``.

    :param app_context: the Flask app's ``app_context``, which handlers run in.
    :param clock: what the services time deadlines and late work by.
    """
    served = settings.each_account()
    store = open_shared_store(settings.store_url)
    try:
        services = {
            account.name: build_service(account, store, app_context=app_context, clock=clock)
            for account in served
        }
    except BaseException:
        store.close()
        raise
    paths = {account.name: url_prefix + account.path for account in served}
    return Accounts(services, paths, store)


def build_service(
    settings: Settings,
    store: Store,
    *,
    app_context: AppContext = nullcontext,
    clock: Clock = SYSTEM_CLOCK,
) -> WeChatService:
    """The service of one account (``settings`` from :meth:`Settings.each_account`) on the
    shared ``store``. Nothing starts a thread until a push arrives.

    :param app_context: what handlers run inside: the Flask app's ``app_context``.
    :param clock: what deadlines, the retry window and late work are timed by.
    """
    router = _router(settings)
    space = namespace(settings)
    ledger = Ledger(store, namespace=space, ttl=settings.ledger_ttl, clock=clock)
    pool = AccountPool(settings.handler_threads, account=settings.name, clock=clock)
    # What handlers reach (app.context): the API clients, the loops of async handlers, the
    # users' sessions and customer-service windows.
    loops = Loops()
    clients = Clients(settings, store, loops)
    delivery = Delivery(store, namespace=space, api=clients.api, later=pool.later)
    contexts = Contexts(
        settings,
        store=store,
        sessions=Sessions(store, namespace=space, ttl=settings.session_ttl),
        windows=delivery.windows,
        clients=clients,
        loops=loops,
        app_context=app_context,
    )
    return WeChatService(
        settings,
        build_account(settings),
        router,
        store=store,
        ledger=ledger,
        pool=pool,
        delivery=delivery,
        leases=AccountLeases(ledger, interval=LEASE_RENEWAL, account=settings.name, clock=clock),
        contexts=contexts,
        outbox=Outbox(store, namespace=space, ttl=settings.ledger_ttl),
        clock=clock,
    )


def namespace(settings: Settings) -> str:
    """Where an account keeps its ledger, kept replies and sessions in the shared store.

    The default account keeps the namespace it has always had (its AppID, or a digest of its
    Token), so an upgrade still finds what it kept; another account's starts with its name, so
    two accounts never share a push or a kept reply, even with one AppID. The access_token is
    the AppID's, whichever account asks (:mod:`app.api.token`): WeChat has one per AppID.
    """
    own = settings.appid or "token-" + hashlib.sha256(settings.token.encode()).hexdigest()[:12]
    return own if settings.name == DEFAULT_ACCOUNT else f"{settings.name}:{own}"


def _router(settings: Settings) -> Router:
    if not settings.handlers:
        return demo.router
    try:
        return load_router(settings.handlers)
    except HandlerLoadError as e:
        if settings.name == DEFAULT_ACCOUNT:
            raise
        raise HandlerLoadError(f"account {settings.name!r}: {e.message}") from e


class AccountPool(HandlerPool):
    """An account's handler pool: all it runs, runs in the account's :mod:`scope`, so log lines
    and metrics of handler runs and late deliveries name the account on any thread."""

    def __init__(self, threads: int, *, account: str, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(threads, clock=clock)
        self.account = account

    def run(self, work: Callable[[], _T]) -> HandlerRun[_T]:
        return super().run(scope.bound(self.account, work))

    def background(self, work: Callable[[], object]) -> None:
        super().background(scope.bound(self.account, work))

    def later(self, delay: float, work: Callable[[], object]) -> None:
        super().later(delay, scope.bound(self.account, work))

    def every(self, interval: float, work: Callable[[], object]) -> None:
        super().every(interval, scope.bound(self.account, work))


class AccountLeases(LeaseKeeper):
    """An account's lease keeper, which counts running and hung handlers for the account.

    Its renewing thread, and whoever releases a lease (a future's callback, on any thread), run
    outside the account's scope otherwise.
    """

    def __init__(
        self, ledger: Ledger, *, interval: float, account: str, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        super().__init__(ledger, interval=interval, clock=clock)
        self.account = account

    def hold(self, push_key: PushKey) -> None:
        with scope.serving(self.account):
            super().hold(push_key)

    def release(self, push_key: PushKey) -> None:
        with scope.serving(self.account):
            super().release(push_key)

    def _renew(self) -> None:
        with scope.serving(self.account):
            super()._renew()
