"""One contract, every backend: the same cases run against memory, SQLite and Redis.

Redis cases use a real server (``redis://127.0.0.1:6379/15`` or ``WX_TEST_REDIS_URL``) and a
random key prefix per test, removed afterwards. Without a server they are skipped, unless
``WX_TEST_REQUIRE_REDIS=1`` (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import redis

from app.store import MemoryStore, RedisStore, SQLiteStore, Store, StoreError, open_store
from app.store import redis as redis_store
from app.store import sqlite as sqlite_store
from tests.conftest import REDIS_URL

SHORT = 0.2  # a ttl that runs out during the test
PAST_SHORT = 0.35  # sleep this long to be past it
LONG = 30.0  # a ttl that does not


@dataclass
class Backend:
    kind: str
    url: str
    store: Store


def _with_query(url: str, **options: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(options)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """A fresh, empty store of each kind, with the URL that opens it from another process.

    ``sqlite-compat`` (requested indirectly) is SQLite with ``DELETE ... RETURNING`` turned
    off, to cover the ``BEGIN IMMEDIATE`` path used with SQLite older than 3.35.
    """
    kind: str = request.param
    prefix = f"wxtest:{secrets.token_hex(6)}:"
    if kind == "memory":
        url = "memory://"
    elif kind in ("sqlite", "sqlite-compat"):
        url = f"sqlite:///{tmp_path / 'ledger' / 'store.db'}"
    elif kind == "redis":
        url = _with_query(request.getfixturevalue("redis_url"), prefix=prefix)
    else:
        raise ValueError(f"unknown backend kind {kind!r}")
    store = open_store(url)
    if kind == "sqlite-compat":
        assert isinstance(store, SQLiteStore)
        store.returning = False
    try:
        yield Backend(kind, url, store)
    finally:
        store.close()
        if kind == "redis":
            _delete_prefixed(REDIS_URL, prefix)


def _delete_prefixed(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store


def _in_threads(n: int, fn: Callable[[], Any]) -> list[Any]:
    """Run ``fn`` in ``n`` threads released together; return results, re-raise a failure."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = fn()
        except BaseException as e:  # noqa: B036 - handed to the main thread below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    if errors:
        raise errors[0]
    return results


# --- get / set / delete ------------------------------------------------------------------


def test_get_absent_is_none(store: Store) -> None:
    assert store.get("absent") is None


def test_set_then_get_returns_exact_bytes(store: Store) -> None:
    value = b"<xml>\x00\xff\xfe reply \xe4\xbd\xa0</xml>"
    store.set("k", value, LONG)
    assert store.get("k") == value


def test_set_overwrites_value_and_expiry(store: Store) -> None:
    store.set("k", b"first", SHORT)
    store.set("k", b"second", LONG)
    time.sleep(PAST_SHORT)
    assert store.get("k") == b"second"


def test_set_expires_after_ttl(store: Store) -> None:
    store.set("k", b"v", SHORT)
    assert store.get("k") == b"v"
    time.sleep(PAST_SHORT)
    assert store.get("k") is None


def test_delete_is_idempotent(store: Store) -> None:
    store.delete("absent")
    store.set("k", b"v", LONG)
    store.delete("k")
    assert store.get("k") is None
    store.delete("k")


@pytest.mark.parametrize("ttl", [0, -1.0])
def test_ttl_must_be_positive(store: Store, ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl must be a positive number of seconds"):
        store.set("k", b"v", ttl)
    with pytest.raises(ValueError, match="ttl must be a positive number of seconds"):
        store.add("k", b"v", ttl)
    with pytest.raises(ValueError, match="ttl must be a positive number of seconds"):
        with store.lock("l", ttl=ttl, wait=0):
            pass
    assert store.get("k") is None


def test_ping_ok(store: Store) -> None:
    store.ping()


def test_backend_satisfies_protocol(store: Store) -> None:
    assert isinstance(store, Store)


# --- add (the claim) -----------------------------------------------------------------------


def test_add_only_if_absent(store: Store) -> None:
    assert store.add("k", b"first", LONG) is True
    assert store.add("k", b"second", LONG) is False
    assert store.get("k") == b"first"


def test_add_after_expiry_succeeds(store: Store) -> None:
    assert store.add("k", b"old", SHORT) is True
    time.sleep(PAST_SHORT)
    assert store.add("k", b"new", LONG) is True
    assert store.get("k") == b"new"


def test_add_and_peek_claims_and_reads_in_one_call(store: Store) -> None:
    store.set("kept", b"reply", LONG)
    assert store.add_and_peek("k", b"first", LONG, "kept") == (True, b"reply")
    assert store.add_and_peek("k", b"second", LONG, "kept") == (False, b"reply")
    assert store.add_and_peek("other", b"x", LONG, "absent") == (True, None)
    assert store.get("k") == b"first"


def test_add_and_peek_race_among_threads_has_one_winner(store: Store) -> None:
    wins = _in_threads(12, lambda: store.add_and_peek("claim", b"x", LONG, "peek")[0])
    assert wins.count(True) == 1


def test_add_race_among_threads_has_one_winner(store: Store) -> None:
    for i in range(5):
        key = f"claim:{i}"
        wins = _in_threads(12, functools.partial(store.add, key, b"x", LONG))
        assert wins.count(True) == 1, f"{key}: {wins}"
        assert wins.count(False) == 11


# --- take (deliver once) -------------------------------------------------------------------

WITH_COMPAT = pytest.mark.parametrize(
    "backend", ["memory", "sqlite", "sqlite-compat", "redis"], indirect=True
)


@WITH_COMPAT
def test_take_returns_value_once(store: Store) -> None:
    store.set("k", b"reply", LONG)
    assert store.take("k") == b"reply"
    assert store.take("k") is None
    assert store.get("k") is None


@WITH_COMPAT
def test_take_absent_or_expired_is_none(store: Store) -> None:
    assert store.take("absent") is None
    store.set("k", b"v", SHORT)
    time.sleep(PAST_SHORT)
    assert store.take("k") is None


@WITH_COMPAT
def test_take_race_among_threads_has_one_receiver(store: Store) -> None:
    store.set("k", b"reply", LONG)
    got = _in_threads(12, lambda: store.take("k"))
    assert got.count(b"reply") == 1, got
    assert got.count(None) == 11


# --- lock ----------------------------------------------------------------------------------


def test_lock_is_mutually_exclusive_among_threads(store: Store) -> None:
    guard = threading.Lock()
    inside = max_inside = counter = 0

    def work() -> bool:
        nonlocal inside, max_inside, counter
        with store.lock("refresh", ttl=10, wait=10) as held:
            with guard:
                inside += 1
                max_inside = max(max_inside, inside)
            seen = counter
            time.sleep(0.005)
            counter = seen + 1
            with guard:
                inside -= 1
        return held

    assert _in_threads(8, work) == [True] * 8
    assert max_inside == 1
    assert counter == 8


def test_lock_wait_runs_out_yields_false(store: Store) -> None:
    with store.lock("refresh", ttl=10, wait=0) as first:
        assert first is True
        with store.lock("refresh", ttl=10, wait=0.1) as second:
            assert second is False
    with store.lock("refresh", ttl=10, wait=0) as again:
        assert again is True


def test_lock_released_when_block_raises(store: Store) -> None:
    with pytest.raises(RuntimeError, match="handler broke"):
        with store.lock("refresh", ttl=10, wait=0):
            raise RuntimeError("handler broke")
    with store.lock("refresh", ttl=10, wait=0) as held:
        assert held is True


def test_locks_with_different_names_are_independent(store: Store) -> None:
    with store.lock("a", ttl=10, wait=0) as a, store.lock("b", ttl=10, wait=0) as b:
        assert (a, b) == (True, True)


def test_lock_expiry_lets_a_new_holder_in(store: Store) -> None:
    with store.lock("refresh", ttl=SHORT, wait=0) as dead_holder:
        assert dead_holder is True
        # The first holder never leaves its block in time, as if its process had died.
        with store.lock("refresh", ttl=10, wait=5) as successor:
            assert successor is True


def test_lock_is_released_only_by_its_owner(store: Store) -> None:
    late = store.lock("refresh", ttl=SHORT, wait=0)
    assert late.__enter__() is True
    current = store.lock("refresh", ttl=10, wait=5)
    assert current.__enter__() is True  # after `late` expired
    late.__exit__(None, None, None)  # must not free `current`'s lock
    with store.lock("refresh", ttl=10, wait=0) as intruder:
        assert intruder is False
    current.__exit__(None, None, None)
    with store.lock("refresh", ttl=10, wait=0) as next_holder:
        assert next_holder is True


# --- several processes ---------------------------------------------------------------------


def _race_worker(url: str, barrier: Any, keys: list[str], results: Any) -> None:
    """Child process: claim every key and take every reply, all processes at once."""
    store = open_store(url)
    try:
        barrier.wait(timeout=60)
        claimed = [k for k in keys if store.add("claim:" + k, str(os.getpid()).encode(), LONG)]
        taken = [k for k in keys if store.take("reply:" + k) is not None]
    finally:
        store.close()
    results.put((claimed, taken))


@pytest.mark.parametrize("backend", ["sqlite", "redis"], indirect=True)
def test_add_and_take_race_among_processes(backend: Backend) -> None:
    processes, keys = 4, [f"push:{i}" for i in range(50)]
    for k in keys:
        backend.store.set("reply:" + k, b"reply", LONG)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=_race_worker, args=(backend.url, barrier, keys, results))
        for _ in range(processes)
    ]
    for w in workers:
        w.start()
    exitcodes = []
    try:
        outcomes = [results.get(timeout=60) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=60)
            exitcodes.append(w.exitcode)
            w.close()
        results.close()
        results.join_thread()
    assert exitcodes == [0] * processes
    claimed = sorted(k for claimed, _ in outcomes for k in claimed)
    taken = sorted(k for _, taken in outcomes for k in taken)
    assert claimed == sorted(keys), "every push claimed exactly once in total"
    assert taken == sorted(keys), "every reply taken exactly once in total"


def _open_worker(url: str, barrier: Any, results: Any) -> None:
    """Child process: open the store at the same moment as the others."""
    barrier.wait(timeout=60)
    try:
        store = open_store(url)
    except StoreError as e:
        results.put(e.message)
        return
    store.close()
    results.put("ok")


def test_sqlite_new_file_opened_by_many_processes_at_once(tmp_path: Path) -> None:
    # Workers starting side by side all switch the new file to WAL; none may fail.
    processes, url = 8, f"sqlite:///{tmp_path / 'fresh.db'}"
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=_open_worker, args=(url, barrier, results)) for _ in range(processes)
    ]
    for w in workers:
        w.start()
    try:
        outcomes = [results.get(timeout=60) for _ in workers]
    finally:
        for w in workers:
            w.join(timeout=60)
            w.close()
        results.close()
        results.join_thread()
    assert outcomes == ["ok"] * processes


# --- open_store ----------------------------------------------------------------------------


def test_open_store_memory() -> None:
    store = open_store("memory://")
    assert isinstance(store, MemoryStore)
    store.close()


def test_open_store_sqlite_relative_creates_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store("sqlite:///var/wx/ledger.db")
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == "var/wx/ledger.db"
        store.set("k", b"v", LONG)
    finally:
        store.close()
    assert (tmp_path / "var" / "wx" / "ledger.db").is_file()


def test_open_store_sqlite_absolute_creates_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "ledger.db"
    store = open_store(f"sqlite:///{path}")
    try:
        assert isinstance(store, SQLiteStore)
        assert store.path == str(path)
    finally:
        store.close()
    assert path.is_file()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///wx.db?timeout=3"])
def test_open_store_rejects_malformed_sqlite_url(url: str) -> None:
    with pytest.raises(ValueError, match="SQLite store URL"):
        open_store(url)


def test_open_store_redis_takes_prefix_from_url() -> None:
    store = open_store("rediss://:s3cret@cache.example:6380/2?prefix=svc1:")
    try:
        assert isinstance(store, RedisStore)
        assert (store.prefix, store.address) == ("svc1:", "cache.example:6380")
    finally:
        store.close()
    store = open_store("redis://127.0.0.1:6379/0")
    assert isinstance(store, RedisStore) and store.prefix == "wx:"
    store.close()


def test_open_store_unknown_scheme_names_forms_not_password() -> None:
    with pytest.raises(ValueError) as info:
        open_store("mysql://user:s3cret@db.example/wx")
    message = str(info.value)
    assert message.startswith("unknown store URL scheme 'mysql'; use memory://")
    assert "sqlite:////absolute/path.db" in message and "redis://" in message
    assert "s3cret" not in message


# --- backend specifics ---------------------------------------------------------------------


def test_sqlite_unopenable_file_raises_store_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        SQLiteStore(tmp_path)  # a directory, not a database file
    assert info.value.message.startswith(f"SQLite store {str(tmp_path)!r}: open failed: ")
    assert info.value.__cause__ is not None


def test_sqlite_failed_release_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    with store.lock("refresh", ttl=LONG, wait=0) as held:
        assert held is True
        store.close()  # the release below cannot reach the file any more
    assert [r.getMessage() for r in caplog.records] == [
        f"lock 'lock:refresh' not released, it expires on its own:"
        f" SQLite store {str(tmp_path / 'store.db')!r} is closed"
    ]


def test_redis_down_raises_store_error_quickly() -> None:
    store = RedisStore("redis://:s3cret@127.0.0.1:1/0")
    calls: list[Callable[[], object]] = [
        lambda: store.get("k"),
        lambda: store.set("k", b"v", LONG),
        lambda: store.add("k", b"v", LONG),
        lambda: store.take("k"),
        lambda: store.delete("k"),
        store.ping,
        lambda: store.lock("l", ttl=LONG, wait=0).__enter__(),
    ]
    try:
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StoreError) as info:
                call()
            assert time.monotonic() - started < 2.0
            assert info.value.message.startswith("Redis at 127.0.0.1:1: ")
            assert "s3cret" not in info.value.message
            assert isinstance(info.value.__cause__, redis.exceptions.RedisError)
    finally:
        store.close()


def test_redis_stalled_server_times_out_as_store_error() -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # completes handshakes, never answers
    port = listener.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout=0.2)
    try:
        for call in (lambda: store.get("k"), lambda: store.add("k", b"v", LONG)):
            started = time.monotonic()
            with pytest.raises(StoreError, match=rf"^Redis at 127\.0\.0\.1:{port}: .*Timeout"):
                call()
            assert time.monotonic() - started < 1.0
    finally:
        store.close()
        listener.close()


def test_redis_keys_carry_the_prefix(redis_url: str) -> None:
    prefix = f"wxtest:{secrets.token_hex(6)}:"
    store = RedisStore(redis_url, prefix=prefix)
    raw = redis.Redis.from_url(redis_url)
    try:
        store.set("push:1", b"v", LONG)
        with store.lock("token", ttl=LONG, wait=0):
            assert sorted(raw.scan_iter(match=prefix + "*")) == [
                f"{prefix}lock:token".encode(),
                f"{prefix}push:1".encode(),
            ]
        assert 0 < raw.pttl(prefix + "push:1") <= LONG * 1000
    finally:
        store.close()
        raw.close()
        _delete_prefixed(redis_url, prefix)


def test_redis_store_leaves_a_passed_client_open(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        store = RedisStore(client, prefix=f"wxtest:{secrets.token_hex(6)}:")
        store.ping()
        store.close()
        assert client.ping() is True
    finally:
        client.close()


def test_redis_connection_closed_by_the_server_is_replaced_before_use(redis_url: str) -> None:
    # No command is retried (a resent SET NX could report the opposite of what happened), so
    # a connection the server dropped while idle must be noticed before a command is sent.
    prefix = f"wxtest:{secrets.token_hex(6)}:"
    store = RedisStore(redis_url, prefix=prefix)
    raw = redis.Redis.from_url(redis_url)
    try:
        store.set("k", b"v", LONG)
        (connection_id,) = store._run("CLIENT ID", ("CLIENT", "ID"))
        assert raw.client_kill_filter(_id=connection_id) == 1
        assert store.get("k") == b"v"
    finally:
        store.close()
        raw.close()
        _delete_prefixed(redis_url, prefix)


def _answer_with_key_names(listener: socket.socket) -> None:
    """Serve each connection as a Redis that answers GET k with "k", and GET slow late."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=_answer_one, args=(conn,), daemon=True).start()


def _answer_one(conn: socket.socket) -> None:
    with conn, conn.makefile("rb") as reader:
        while line := reader.readline():
            args = [reader.readline() and reader.readline()[:-2] for _ in range(int(line[1:]))]
            if args[0].upper() != b"GET":
                conn.sendall(b"+OK\r\n")
                continue
            if args[1] == b"slow":
                time.sleep(0.4)
            conn.sendall(b"$%d\r\n%s\r\n" % (len(args[1]), args[1]))


def test_redis_reply_that_came_too_late_never_answers_a_later_call() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_answer_with_key_names, args=(listener,), daemon=True).start()
    url = f"redis://127.0.0.1:{listener.getsockname()[1]}/0?protocol=2"  # no HELLO to answer
    store = RedisStore(url, prefix="", timeout=0.2)
    try:
        with pytest.raises(StoreError, match="Timeout"):
            store.get("slow")
        time.sleep(0.4)  # its reply arrives meanwhile
        assert store.get("fast") == b"fast"
    finally:
        store.close()
        listener.close()


def _refuse_echoing_the_password(listener: socket.socket) -> None:
    """Answer the first command of a connection, AUTH, with an error that repeats its arguments."""
    conn, _ = listener.accept()
    with conn, conn.makefile("rb") as reader:
        line = reader.readline()
        args = [reader.readline() and reader.readline()[:-2] for _ in range(int(line[1:]))]
        conn.sendall(b"-ERR no such user or password: " + b" ".join(args[1:]) + b"\r\n")


def test_redis_errors_name_the_server_never_the_password() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_refuse_echoing_the_password, args=(listener,), daemon=True).start()
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    store = RedisStore(f"redis://:s3cr3t-pass@{address}/0?protocol=2", timeout=2)
    try:
        with pytest.raises(StoreError) as raised:
            store.get("k")
        assert address in raised.value.message and "no such user" in raised.value.message
        assert "s3cr3t-pass" not in raised.value.message
    finally:
        store.close()
        listener.close()


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_redis_commands_are_packed_as_redis_py_packs_them(encoding: str) -> None:
    commands = (
        ("SET", "wx:clé:1", b"a\r\n$b", "PX", 30000, "NX"),
        ("GET", ""),
        ("EVAL", redis_store._RELEASE, 1, "wx:lock:x", b""),
        ("PING",),
    )
    client = redis.Connection(encoding=encoding)
    expected = b"".join(client.pack_commands(commands))
    assert redis_store._pack(commands, encoding, "strict") == expected


def test_redis_store_rejects_decoding_client() -> None:
    client = redis.Redis(host="127.0.0.1", port=1, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            RedisStore(client)
    finally:
        client.close()


def test_a_sqlite_file_made_read_only_fails_every_call_until_writable_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pooled connection opened before the chmod could still write (as root it can), while
    # new ones fail: workers would split between the file and the fallback. All calls fail.
    monkeypatch.setattr(sqlite_store, "FILE_CHECK_INTERVAL", 0.0)
    path = tmp_path / "shared.db"
    store = SQLiteStore(path)
    try:
        store.set("before", b"1", 60)
        path.chmod(0o444)
        with pytest.raises(StoreError, match="read-only"):
            store.add("claim", b"1", 60)
        with pytest.raises(StoreError, match="read-only"):
            store.get("before")
        path.chmod(0o644)
        assert store.add("claim", b"1", 60) is True
    finally:
        path.chmod(0o644)
        store.close()


def test_a_deleted_sqlite_file_is_noticed_and_the_store_stays_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers' stores on one file; the file is deleted. Before, the pooled connections kept
    # the old inode and new ones made an empty file without the table: two stores for good.
    monkeypatch.setattr(sqlite_store, "FILE_CHECK_INTERVAL", 0.0)
    path = tmp_path / "shared.db"
    worker_a, worker_b = SQLiteStore(path), SQLiteStore(path)
    try:
        worker_a.set("before", b"1", 60)
        assert worker_b.get("before") == b"1"
        for leftover in tmp_path.iterdir():
            leftover.unlink()
        worker_a.set("after", b"2", 60)
        assert worker_b.get("after") == b"2"
        assert worker_b.add("claim", b"b", 60) is True
        assert worker_a.add("claim", b"a", 60) is False
        with pytest.raises(StoreError, match="deleted or replaced"):
            worker_a.ping()
    finally:
        worker_a.close()
        worker_b.close()


def _rows(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return [key for (key,) in conn.execute("SELECT key FROM store ORDER BY key")]


def test_sqlite_writes_maintain_no_index_beside_the_key(tmp_path: Path) -> None:
    # A file of an earlier version carries an index on expires, a second B-tree every write
    # updated; opening it drops that index.
    path = tmp_path / "old.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.executescript(
            "CREATE TABLE store (key TEXT PRIMARY KEY, value BLOB NOT NULL, expires REAL NOT NULL)"
            " WITHOUT ROWID; CREATE INDEX store_expires ON store (expires);"
        )
    SQLiteStore(path).close()
    with closing(sqlite3.connect(path)) as conn:
        indexes = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    assert indexes == []


def test_sqlite_writes_purge_expired_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "PURGE_INTERVAL", 0.0)
    store = SQLiteStore(tmp_path / "purged.db")
    try:
        store.set("short", b"1", SHORT)
        store.set("long", b"2", LONG)
        time.sleep(PAST_SHORT)
        store.add("claim", b"3", LONG)
        assert _rows(tmp_path / "purged.db") == ["claim", "long"]
    finally:
        store.close()


def test_sqlite_writes_purge_a_batch_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One DELETE of every expired row held the write lock, and every worker's writes with it,
    # for 0.4 s at 120,000 rows; each write now deletes a bounded batch, in key order.
    monkeypatch.setattr(sqlite_store, "PURGE_BATCH", 2)
    path = tmp_path / "batched.db"
    store = SQLiteStore(path)
    try:
        expired = [(f"old:{i}", b"x", 1.0) for i in range(5)]
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.executemany("INSERT INTO store VALUES (?, ?, ?)", expired)
        store.set("new:0", b"1", LONG)
        assert _rows(path) == ["new:0", "old:2", "old:3", "old:4"]
        store.add("new:1", b"1", LONG)
        assert _rows(path) == ["new:0", "new:1", "old:4"]
        store.add_and_peek("new:2", b"1", LONG, "new:0")
        assert _rows(path) == ["new:0", "new:1", "new:2"]
        with closing(sqlite3.connect(path)) as conn, conn:
            conn.execute("INSERT INTO store VALUES ('old:9', x'00', 1.0)")
        store.set("new:3", b"1", LONG)
        assert "old:9" in _rows(path), "the sweep is over; the next one waits PURGE_INTERVAL"
    finally:
        store.close()


def test_sqlite_connections_checkpoint_the_wal_less_often_than_sqlite_s_default(
    tmp_path: Path,
) -> None:
    # Each checkpoint syncs twice; at SQLite's 1000 pages that came every few hundred pushes.
    store = SQLiteStore(tmp_path / "wal.db")
    try:
        (pages,) = store._use(
            "inspect", lambda conn: conn.execute("PRAGMA wal_autocheckpoint").fetchone()
        )
        assert pages == sqlite_store.CHECKPOINT_PAGES > 1000
    finally:
        store.close()


def _in_child(work: Callable[[], bool]) -> bool:
    """Run ``work`` in a forked child, as gunicorn forks its workers; return what it returned."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if work() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def test_a_forked_sqlite_store_uses_none_of_the_parent_s_connections(tmp_path: Path) -> None:
    # One connection pooled, one lent at the moment of the fork; SQLite forbids a child to use
    # either. Before, the lent one went back into the child's pool when returned there.
    store = SQLiteStore(tmp_path / "forked.db")
    try:
        store.set("before", b"1", LONG)
        lent = store._checkout()
        parents = set(store._born)

        def child() -> bool:
            seen = store.get("before") == b"1"
            store._checkin(lent)
            own = store._checkout()
            return seen and own not in parents and parents <= set(store._inherited)

        assert _in_child(child)
        store._checkin(lent)
        assert store.get("before") == b"1"
    finally:
        store.close()


def test_sqlite_calls_look_at_the_file_once_per_interval_and_ping_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stat per call was a third of a read's cost; /healthz must still see a deletion at once.
    monkeypatch.setattr(sqlite_store, "FILE_CHECK_INTERVAL", 3600.0)
    looks: list[str] = []
    status = sqlite_store._status

    def looking(path: str) -> os.stat_result | None:
        looks.append(path)
        return status(path)

    monkeypatch.setattr(sqlite_store, "_status", looking)
    path = tmp_path / "looked.db"
    store = SQLiteStore(path)
    try:
        looks.clear()
        for i in range(20):
            store.add(f"claim:{i}", b"1", LONG)
            store.get(f"claim:{i}")
        assert len(looks) == 1
        for leftover in tmp_path.iterdir():
            leftover.unlink()
        with pytest.raises(StoreError, match="deleted or replaced"):
            store.ping()
        assert store.get("claim:0") is None
    finally:
        store.close()
