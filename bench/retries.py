"""The never-twice, never-late, never-lost figures, measured on real gunicorn processes.

Plays WeChat against ``gunicorn wsgi:app`` on loopback with the production deadline
(WX_DEADLINE=4.5) and the handlers of tests/service_handlers.py, and prints what happened:

* storm: N pushes × 3 attempts sent all at once to 4 workers, SQLite and Redis ledgers:
  handler runs per push and whether every attempt got identical bytes;
* slow: a handler sleeping 8 s, attempts sent as WeChat does (next attempt when the previous
  one got no answer, at least 5 s after it started): who answered, after how long;
* late: a handler sleeping 30 s: every attempt within the deadline, the reply delivered with the
  user's next message (no AppSecret), or once through a fake customer-service API;
* tokens: 4 processes x 200 API calls from a cold cache, then a 40001;
* outage: a private Redis stopped mid-run: pushes still answered.

    .venv/bin/python bench/retries.py [--pushes 200] [--skip-late]
"""

from __future__ import annotations

import argparse
import multiprocessing
import secrets
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.api import WeChatAPI  # noqa: E402
from app.store import SQLiteStore  # noqa: E402
from app.testing import PushBuilder  # noqa: E402
from config import load_settings  # noqa: E402
from tests.fakewechat import FakeWeChat  # noqa: E402
from tests.servers import NO_ANSWER, gunicorn, private_redis, request  # noqa: E402

TOKEN = "benchToken2026"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx1a2b3c4d5e6f7a8b"
SECRET = "0123456789abcdef0123456789abcdef"
WECHAT_TIMEOUT = 5.0


def environment(workdir: Path, store_url: str) -> dict[str, str]:
    return {
        "WX_TOKEN": TOKEN,
        "WX_APPID": APPID,
        "WX_AES_KEY": AES_KEY,
        "WX_HANDLERS": "tests.service_handlers",
        "WX_STORE_URL": store_url,
        "WX_TEST_CALLS": str(workdir / "calls.log"),
    }


def runs(workdir: Path) -> Counter[str]:
    path = workdir / "calls.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter(line.split(" ", 1)[1] for line in lines)


def storm(label: str, store_url: str, pushes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = environment(workdir, store_url)
        wechat = PushBuilder(load_settings(env, dotenv=False))
        built = [
            wechat.build(
                wechat.complete(
                    {"MsgType": "text", "Content": f"storm {n}", "FromUserName": f"oS{n}"}
                )
            )
            for n in range(pushes)
        ]
        with gunicorn(env, workers=4, log=workdir / "gunicorn.log") as url:
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=32) as pool:
                futures = [
                    [pool.submit(request, "POST", url + "/wx", q, b) for _ in range(3)]
                    for q, b in built
                ]
                answers = [[f.result() for f in attempts] for attempts in futures]
            took = time.monotonic() - started
        counts = runs(workdir)
        identical = sum(len({body for _, body in attempts}) == 1 for attempts in answers)
        statuses = Counter(status for attempts in answers for status, _ in attempts)
        degraded = "DEGRADED" in (workdir / "gunicorn.log").read_text()
        print(
            f"storm/{label}: {pushes} pushes x 3 attempts in {took:.2f} s; handler runs per push:"
            f" {dict(Counter(counts.values()))} (pushes with a run: {len(counts)});"
            f" pushes whose 3 answers are identical: {identical}/{pushes};"
            f" statuses {dict(statuses)}; degraded: {degraded}"
        )


def like_wechat(url: str, query: dict[str, str], body: bytes, wechat: PushBuilder) -> list[str]:
    """Send up to three attempts the way WeChat does and describe each."""
    lines = []
    first = time.monotonic()
    for attempt in range(1, 4):
        started = time.monotonic()
        status, answer = request("POST", url + "/wx", query, body)
        took = time.monotonic() - started
        at = started - first
        if status == NO_ANSWER:
            lines.append(f"attempt {attempt} at {at:4.1f} s: no answer after {took:.2f} s (lapsed)")
            time.sleep(max(0.0, started + WECHAT_TIMEOUT - time.monotonic()))
            continue
        result = wechat.read(status, answer)
        shown = "success" if result.success else repr(result.reply)
        lines.append(f"attempt {attempt} at {at:4.1f} s: {status} {shown} after {took:.2f} s")
        break
    return lines


def slow(seconds: float, *, follow_up: bool, api: FakeWeChat | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = environment(workdir, f"sqlite:///{workdir}/ledger.db")
        if api is not None:
            env.update(WX_APPSECRET=api.secret, WX_API_BASE=api.url)
        wechat = PushBuilder(load_settings(env, dotenv=False), user=f"oSlow{secrets.token_hex(3)}")
        push = wechat.complete({"MsgType": "text", "Content": f"sleep {seconds:g}"})
        with gunicorn(env, workers=2, log=workdir / "gunicorn.log") as url:
            via = "customer-service API" if api else "next message"
            print(f"slow handler ({seconds:g} s), WX_DEADLINE=4.5, strategy retry, late: {via}")
            for line in like_wechat(url, *wechat.build(push), wechat):
                print("  " + line)
            if api is not None:
                finished = time.monotonic() + seconds - 14.0 + 8.0
                while not api.messages and time.monotonic() < finished:
                    time.sleep(0.2)
                print(f"  customer-service messages sent to the fake API: {api.messages}")
            elif follow_up:
                time.sleep(max(0.0, seconds - 14.0))
                query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "hi"}))
                result = wechat.read(*request("POST", url + "/wx", query, body))
                print(f"  the user's next message is answered with: {result.reply!r}")
        print(f"  handler runs: {sum(runs(workdir).values()) - int(follow_up)} (the slow push)")


def _api_calls(url: str, db: str, calls: int) -> None:
    store = SQLiteStore(db)
    api = WeChatAPI(APPID, SECRET, store, base_url=url)
    for n in range(calls):
        api.typing(f"o{n}")
    store.close()


def tokens() -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeWeChat(APPID, SECRET) as fake:
        db = f"{tmp}/tokens.db"
        context = multiprocessing.get_context("spawn")
        processes = [context.Process(target=_api_calls, args=(fake.url, db, 200)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        print(
            f"tokens: 4 processes x 200 calls from a cold cache: {len(fake.typing)} calls,"
            f" {fake.token_requests} token request(s)"
        )
        fake.fail_next("/cgi-bin/message/custom/typing", 40001)
        store = SQLiteStore(db)
        WeChatAPI(APPID, SECRET, store, base_url=fake.url).typing("oAfter")
        store.close()
        print(
            f"tokens: after one 40001 the call succeeded; token requests now"
            f" {fake.token_requests} (one refresh)"
        )


def outage() -> None:
    with tempfile.TemporaryDirectory() as tmp, private_redis() as (redis_url, redis):
        workdir = Path(tmp)
        env = environment(workdir, redis_url)
        wechat = PushBuilder(load_settings(env, dotenv=False))
        answered: Counter[str] = Counter()
        with gunicorn(env, workers=2, log=workdir / "gunicorn.log") as url:
            for n in range(40):
                if n == 20:
                    redis.terminate()
                    redis.wait()
                query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": f"o{n}"}))
                status, answer = request("POST", url + "/wx", query, body)
                reply = wechat.read(status, answer).reply if status == 200 else None
                answered["before" if n < 20 else "after"] += reply is not None
        log = (workdir / "gunicorn.log").read_text()
        print(
            f"outage: replies before Redis stopped {answered['before']}/20, after"
            f" {answered['after']}/20; 500s: {log.count(' 500 ')}; DEGRADED logged:"
            f" {'DEGRADED' in log}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--skip-late", action="store_true", help="skip the 30 s handler")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        storm("sqlite", f"sqlite:///{tmp}/ledger.db", options.pushes)
    storm("redis", f"{options.redis}?prefix=bench-{secrets.token_hex(4)}:", options.pushes)
    tokens()
    slow(8, follow_up=False)
    if not options.skip_late:
        slow(30, follow_up=True)
        with FakeWeChat(APPID, SECRET) as fake:
            slow(30, follow_up=False, api=fake)
    outage()


if __name__ == "__main__":
    main()
