"""The command line as a newcomer runs it: a subprocess against a real gunicorn on loopback."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.console.simulator import SAMPLES, push_fields
from app.testing import PushBuilder
from app.wechat import codec
from app.wechat.messages import UnknownEvent, UnknownMessage, parse_message
from config import DEMO_VALUES, load_settings
from tests.conftest import AES_KEY, APPID, TOKEN
from tests.servers import ROOT, free_port, gunicorn, run_cli

ACCOUNT = {"WX_TOKEN": TOKEN, "WX_APPID": APPID, "WX_AES_KEY": AES_KEY}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The demo echo account, as `make run` serves it."""
    tmp = tmp_path_factory.mktemp("demo")
    env = {**ACCOUNT, "WX_STORE_URL": f"sqlite:///{tmp}/ledger.db"}
    with gunicorn(env, workers=1, log=tmp / "gunicorn.log") as url:
        yield url + "/wx"


@pytest.fixture(scope="module")
def handlers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """tests/service_handlers.py behind a 1-second deadline; yields the URL and the calls log."""
    tmp = tmp_path_factory.mktemp("handlers")
    env = {
        **ACCOUNT,
        "WX_HANDLERS": "tests.service_handlers",
        "WX_DEADLINE": "1",
        "WX_STORE_URL": f"sqlite:///{tmp}/ledger.db",
        "WX_TEST_CALLS": str(tmp / "calls.log"),
    }
    with gunicorn(env, workers=2, log=tmp / "gunicorn.log") as url:
        yield url + "/wx", tmp / "calls.log"


def test_keygen_needs_no_settings_and_makes_valid_ones() -> None:
    result = run_cli("keygen", env={})
    assert result.returncode == 0, result.stderr
    values = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("WX_")
    )
    assert len(values["WX_TOKEN"]) == 32
    assert len(values["WX_AES_KEY"]) == 43
    load_settings({**values, "WX_APPID": APPID}, dotenv=False)


def test_commands_read_the_demo_values_until_there_is_a_dotenv(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    demo_token = load_settings({"WX_DOTENV": str(ROOT / ".env.example")}).token
    before = run_cli("info", env={}, cwd=tmp_path, dotenv=True)
    assert before.returncode == 0, before.stderr
    assert "no .env here: using the demo values of .env.example" in before.stderr
    assert demo_token in before.stdout
    (tmp_path / ".env").write_text("WX_TOKEN=MyOwnToken42\n")
    after = run_cli("info", env={}, cwd=tmp_path, dotenv=True)
    assert after.returncode == 0, after.stderr
    assert after.stderr == ""
    assert "MyOwnToken42" in after.stdout


def test_commands_say_where_they_looked_for_dotenv(tmp_path: Path) -> None:
    result = run_cli("info", env={}, cwd=tmp_path, dotenv=True)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: WX_TOKEN is not set. Put the console's Token in .env (see .env.example), or run"
        " `python -m app keygen` for a new one.",
        f"(there is no {tmp_path / '.env'}: run the command in the directory that holds your"
        " .env, or name the file in WX_DOTENV)",
    ]


def test_the_wx_push_command_works_from_any_directory(tmp_path: Path) -> None:
    """What pip's `wx-push` script runs, from outside the repository (`pip install -e .`)."""
    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]["wx-push"]
    module, _, function = target.partition(":")
    (tmp_path / ".env").write_text("WX_TOKEN=MyOwnToken42\n")
    script = f"import sys; sys.argv[0] = 'wx-push'; from {module} import {function}; {function}()"
    result = subprocess.run(
        [sys.executable, "-c", script, "info"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Token           MyOwnToken42" in result.stdout
    usage = subprocess.run(
        [sys.executable, "-c", script, "--help"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert usage.stdout.startswith("Usage: wx-push [OPTIONS] COMMAND [ARGS]...")


#: Broken handler modules a newcomer writes, and the start of the one line that explains each.
BROKEN_HANDLERS = [
    ("wx_absent", None, "Could not import 'wx_absent': no module named 'wx_absent'."),
    ("wx_no_router", "bot = 1\n", "Module 'wx_no_router' has no attribute 'router'."),
    ("wx_int:bot", "bot = 1\n", "'wx_int:bot' is not a Router (found int)."),
    ("wx_syntax", "router = (\n", "Could not import 'wx_syntax': fix the syntax error at"),
    ("wx_raises", "\n1 / 0\n", "While importing 'wx_raises', ZeroDivisionError was raised at"),
]


@pytest.mark.parametrize("command", ["info", "check"])
@pytest.mark.parametrize(
    ("spec", "source", "says"), BROKEN_HANDLERS, ids=[case[0] for case in BROKEN_HANDLERS]
)
def test_a_broken_handler_module_stops_the_command_in_one_line(
    tmp_path: Path, command: str, spec: str, source: str | None, says: str
) -> None:
    if source is not None:
        (tmp_path / f"{spec.partition(':')[0]}.py").write_text(source)
    args = ("--url", "http://127.0.0.1:1/wx") if command == "check" else ()
    result = run_cli(command, *args, env={**ACCOUNT, "WX_HANDLERS": spec}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: WX_HANDLERS={spec}: {says}")


def test_a_broken_handler_module_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "wx_raises.py").write_text("import os\n\nraise RuntimeError('no API key')\n")
    result = run_cli("info", env={**ACCOUNT, "WX_HANDLERS": "wx_raises"}, cwd=tmp_path)
    assert result.stderr == (
        "error: WX_HANDLERS=wx_raises: While importing 'wx_raises', RuntimeError was raised at"
        f" {tmp_path / 'wx_raises.py'}, line 3 (no API key). Fix the module: the service cannot"
        " start until importing it succeeds.\n"
    )


def test_commands_import_working_handlers(tmp_path: Path) -> None:
    (tmp_path / "wx_fine.py").write_text("from app import Router\nrouter = Router()\n")
    result = run_cli("info", env={**ACCOUNT, "WX_HANDLERS": "wx_fine"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Handlers        wx_fine" in result.stdout


def test_newcomer_path_encrypted_echo(demo: str) -> None:
    result = run_cli("simulate", "--url", demo, "--content", "你好", env=ACCOUNT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "safe xml push" in result.stdout
    assert "200 TextReply(content='你好')" in result.stdout
    assert "<Content><![CDATA[你好]]></Content>" in result.stdout


@pytest.mark.parametrize("mode", ["plaintext", "compatible", "safe"])
def test_simulate_every_mode(demo: str, mode: str) -> None:
    result = run_cli("simulate", "--url", demo, "--type", "image", "--mode", mode, env=ACCOUNT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ImageReply(media_id='MEDIA_IMG')" in result.stdout


def test_simulate_json_and_events(demo: str) -> None:
    json_push = run_cli("simulate", "--url", demo, "--format", "json", env=ACCOUNT)
    assert "200 success" in json_push.stdout
    follow = run_cli("simulate", "--url", demo, "--type", "subscribe", env=ACCOUNT)
    assert "WX_HANDLERS" in follow.stdout
    click = run_cli("simulate", "--url", demo, "--type", "CLICK", "--key", "K1", env=ACCOUNT)
    assert "200 success" in click.stdout


def test_simulate_a_saved_body(demo: str, tmp_path: Path) -> None:
    saved = tmp_path / "push.xml"
    saved.write_text(
        "<xml><ToUserName><![CDATA[gh_0123456789ab]]></ToUserName>"
        "<FromUserName><![CDATA[oSaved]]></FromUserName><CreateTime>1</CreateTime>"
        "<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[from a file]]></Content>"
        f"<MsgId>{free_port()}000</MsgId></xml>"
    )
    result = run_cli("simulate", "--url", demo, "--file", str(saved), env=ACCOUNT)
    assert "TextReply(content='from a file')" in result.stdout


def test_repeated_push_runs_the_handler_once(handlers: tuple[str, Path]) -> None:
    url, calls = handlers
    args = ("simulate", "--url", url, "--from", "oRepeatCli", "--content", "once")
    result = run_cli(*args, "--repeat", "--retries", "2", env=ACCOUNT)
    assert result.stdout.count("TextReply(content='echo: once')") == 3
    assert sum("oRepeatCli" in line for line in calls.read_text().splitlines()) == 1


def test_a_lapsed_attempt_is_retried_like_wechat(handlers: tuple[str, Path]) -> None:
    url, _ = handlers
    args = ("simulate", "--url", url, "--content", "sleep 1.5", "--interval", "1.2")
    result = run_cli(*args, env=ACCOUNT)
    assert "attempt 1" in result.stdout
    assert "no answer (lapsed: WeChat would retry)" in result.stdout
    assert "TextReply(content='slept 1.5')" in result.stdout
    assert result.returncode == 0


def test_check_passes_against_a_good_server(demo: str) -> None:
    result = run_cli("check", "--url", demo, env=ACCOUNT)
    assert result.returncode == 0, result.stdout
    assert f"Token           {TOKEN}" in result.stdout
    assert "ok    handshake answered with the exact echostr" in result.stdout


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"env": {"WX_TOKEN": "anotherToken99"}}, "the signature does not match"),
        ({"path": "/wrong"}, "404 Not Found for /wrong"),
        ({"args": ("--clock-offset", "900")}, "the timestamp is outside the server's window"),
        ({"scheme": "https"}, "the https handshake failed"),
        ({"url": "http://127.0.0.1:1/wx"}, "cannot connect to http://127.0.0.1:1/wx"),
    ],
    ids=["wrong-token", "wrong-path", "clock-skew", "https-on-http", "server-down"],
)
def test_check_diagnoses(demo: str, change: dict[str, object], says: str) -> None:
    url = str(change.get("url", demo.removesuffix("/wx") + str(change.get("path", "/wx"))))
    url = url.replace("http:", f"{change.get('scheme', 'http')}:", 1)
    env = {**ACCOUNT, **change.get("env", {})}  # type: ignore[dict-item]
    extra = tuple(change.get("args", ()))  # type: ignore[call-overload]
    result = run_cli("check", "--url", url, *extra, env=env)
    assert result.returncode == 1, result.stdout
    assert says in result.stdout
    assert "cause:" in result.stdout and "fix:" in result.stdout


def test_check_and_simulate_default_to_the_port_make_run_uses(demo: str) -> None:
    port = str(urllib.parse.urlsplit(demo).port)
    check = run_cli("check", env={**ACCOUNT, "PORT": port})
    assert f"Probing http://127.0.0.1:{port}/wx" in check.stdout
    assert check.returncode == 0, check.stdout
    simulate = run_cli("simulate", "--content", "hi", env={**ACCOUNT, "PORT": port})
    assert simulate.returncode == 0, simulate.stdout + simulate.stderr
    assert "200 TextReply(content='hi')" in simulate.stdout


def test_a_port_that_is_not_a_number_is_named() -> None:
    result = run_cli("simulate", env={**ACCOUNT, "PORT": "eighty"})
    assert result.returncode == 2
    assert result.stderr == "error: PORT='eighty' is not a port number; use e.g. 8000.\n"


DEMO_WARNING = "warning: PUBLIC DEMO VALUES: WX_TOKEN still holds the value published in"


def test_check_warns_of_a_demo_value_left_in_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"WX_TOKEN={DEMO_VALUES['WX_TOKEN']}\nWX_APPID={APPID}\nWX_AES_KEY={AES_KEY}\n"
    )
    dead = "http://127.0.0.1:1/wx"
    result = run_cli("check", "--url", dead, env={}, cwd=tmp_path, dotenv=True)
    assert DEMO_WARNING in result.stderr
    assert DEMO_VALUES["WX_TOKEN"] not in result.stderr


def test_check_warns_of_a_demo_value_in_the_environment() -> None:
    env = {**ACCOUNT, "WX_AES_KEY": DEMO_VALUES["WX_AES_KEY"]}
    result = run_cli("check", "--url", "http://127.0.0.1:1/wx", env=env)
    assert "warning: PUBLIC DEMO VALUES: WX_AES_KEY still holds the value" in result.stderr


def test_check_is_quiet_about_own_values() -> None:
    result = run_cli("check", "--url", "http://127.0.0.1:1/wx", env=ACCOUNT)
    assert "warning" not in result.stderr


def test_check_names_a_malformed_aes_key() -> None:
    result = run_cli("check", env={**ACCOUNT, "WX_AES_KEY": AES_KEY[:40]})
    assert result.returncode == 2
    assert "WX_AES_KEY must be 43 letters and digits (got 40 characters)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_every_simulated_push_is_a_known_type(kind: str) -> None:
    builder = PushBuilder(load_settings(ACCOUNT, dotenv=False))
    fields = builder.complete(push_fields(kind, {}))
    message = parse_message(codec.parse_xml(codec.render_xml(fields)))
    assert not isinstance(message, (UnknownMessage, UnknownEvent))
