"""A newcomer's first hour: start-up errors, the demo values, their own handlers and tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from config import DEMO_VALUES, demo_warning, load_settings
from tests.servers import ROOT, free_port, gunicorn, run_cli

#: What a newcomer writes beside .env: not formatted the way the project is, an unused import.
USER_HANDLERS = """\
import re
from app import Router, TextReply
router = Router()
@router.keyword('ping')
def ping(message): return TextReply('pong')
"""
USER_TEST = """\
from app import TextReply, create_app
from app.testing import WeChatClient
from config import Settings
def test_ping():
    app = create_app(Settings(token='testToken123', handlers='myhandlers', store_url='memory://'))
    try:
        assert WeChatClient(app).text('ping').reply == TextReply('pong')
    finally:
        app.extensions['wechat'].close()
"""
#: Left out of the copy of the checkout: local state, and what the user writes themselves.
NOT_COPIED = {".git", ".env", "instance", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


def checkout_with_user_files(
    directory: Path, handlers: str = USER_HANDLERS, test: str = USER_TEST
) -> Path:
    """A checkout like the user's: the repository's entries, plus myhandlers.py and its test."""
    written = {"myhandlers.py": handlers, "test_myhandlers.py": test}
    for entry in ROOT.iterdir():
        # Never a link to a file of the same name in the checkout: writing would overwrite it.
        if entry.name not in NOT_COPIED and entry.name not in written:
            (directory / entry.name).symlink_to(entry)
    for name, source in written.items():
        (directory / name).write_text(source)
    return directory


def readme_example(readme: str, name: str) -> str:
    """The Python block of ``readme`` that starts with the comment ``# <name>``."""
    text = (ROOT / readme).read_text()
    blocks = re.findall(rf"```python\n(# {re.escape(name)}\n.*?)```", text, re.S)
    assert len(blocks) == 1, f"{readme} should show {name} once"
    return str(blocks[0])


def run_documented_test_command(checkout: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [".venv/bin/python", "-m", "pytest", "test_myhandlers.py"],
        cwd=checkout,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def clean_environment() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}


def test_a_users_test_beside_their_handlers_runs_with_the_documented_command(
    tmp_path: Path,
) -> None:
    result = run_documented_test_command(checkout_with_user_files(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout


@pytest.mark.parametrize("readme", ["README.md", "README.zh-CN.md"])
def test_the_readme_handlers_pass_the_readme_test(tmp_path: Path, readme: str) -> None:
    handlers = readme_example(readme, "myhandlers.py")
    test = readme_example(readme, "test_myhandlers.py")
    result = run_documented_test_command(checkout_with_user_files(tmp_path, handlers, test))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_the_projects_lint_leaves_the_users_files_alone(tmp_path: Path) -> None:
    checkout = checkout_with_user_files(tmp_path)
    assert subprocess.run(
        [str(checkout / ".venv/bin/ruff"), "check", "myhandlers.py"], cwd=checkout
    ).returncode, "the user's module must be one ruff would refuse"
    result = subprocess.run(
        # -o: never reinstall the shared virtualenv from a test.
        ["make", "--no-print-directory", "-o", ".venv/.dev-deps", "lint"],
        cwd=checkout,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "myhandlers" not in result.stdout + result.stderr


def test_gunicorn_stops_at_once_with_one_line_for_a_broken_handler_module(
    tmp_path: Path,
) -> None:
    (tmp_path / "wx_unparsable.py").write_text("from app import Router\nrouter = Router(\n")
    environ = {
        **clean_environment(),
        "PYTHONPATH": str(tmp_path),
        "WX_DOTENV": str(ROOT / ".env.example"),
        "WX_HANDLERS": "wx_unparsable",
        "WX_STORE_URL": f"sqlite:///{tmp_path}/ledger.db",
    }
    command = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]
    command += ["--bind", f"127.0.0.1:{free_port()}", "--workers", "1", "wsgi:app"]
    result = subprocess.run(
        command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    output = result.stdout + result.stderr
    assert result.returncode == 3, output
    message = (
        "error: Could not import 'wx_unparsable': fix the syntax error at"
        f" {tmp_path / 'wx_unparsable.py'}, line 2 ('(' was never closed)."
    )
    assert output.count(message) == 1, output
    assert "Reason: Worker failed to boot." in output
    assert "Exception in worker process" not in output


def test_make_run_values_then_simulate_without_arguments(tmp_path: Path) -> None:
    """`make run` with no .env, then `simulate` in another shell with the same PORT."""
    env = {"WX_DOTENV": str(ROOT / ".env.example"), "WX_STORE_URL": f"sqlite:///{tmp_path}/l.db"}
    log = tmp_path / "gunicorn.log"
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    with gunicorn(env, workers=1, log=log) as url:
        port = str(urllib.parse.urlsplit(url).port)
        result = run_cli(
            "simulate", "--content", "你好", env={"PORT": port}, cwd=tmp_path, dotenv=True
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"push to http://127.0.0.1:{port}/wx" in result.stdout
    assert "200 TextReply(content='你好')" in result.stdout
    warning = demo_warning(load_settings({"WX_DOTENV": str(ROOT / ".env.example")}))
    assert warning is not None
    assert f"WARNING app.wsgi: {warning}" in log.read_text()
    assert all(value not in log.read_text() for value in DEMO_VALUES.values())
