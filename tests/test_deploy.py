"""The deploy kit: nginx in front of gunicorn passes pushes and turns a lapse into no answer."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.testing import PushBuilder
from app.wechat.replies import TextReply
from config import load_settings
from tests.conftest import AES_KEY, APPID, TOKEN
from tests.servers import NO_ANSWER, ROOT, free_port, gunicorn, request, run_cli, wait_for_port

DEPLOY = ROOT / "deploy"
# .ci/run installs both and sets this, so that CI never skips the deploy kit's tests.
REQUIRE_NGINX = os.environ.get("WX_TEST_REQUIRE_NGINX") == "1"


@pytest.fixture
def nginx_tools() -> None:
    """Skip (or fail under WX_TEST_REQUIRE_NGINX=1) where nginx or openssl is missing."""
    missing = [tool for tool in ("nginx", "openssl") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install nginx-light openssl)"
        if REQUIRE_NGINX:
            pytest.fail(reason)
        pytest.skip(reason)


def _nginx_conf(tmp: Path, http_port: int, https_port: int) -> Path:
    """deploy/nginx.conf with loopback ports, a throwaway certificate and a private prefix."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")]
        + ["-subj", "/CN=wx.example.com"],
        check=True,
        capture_output=True,
    )
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("/etc/ssl/wx.example.com/fullchain.pem", str(tmp / "cert.pem"))
    site = site.replace("/etc/ssl/wx.example.com/privkey.pem", str(tmp / "key.pem"))
    site = site.replace("/etc/nginx/wx-push-proxy.conf", str(DEPLOY / "wx-push-proxy.conf"))
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    site = site.replace("listen [::]:80;", "")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    site = site.replace("listen [::]:443 ssl http2;", "")
    (tmp / "site.conf").write_text(site)
    temp_paths = "\n".join(
        f"  {kind}_temp_path {tmp};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp / "nginx.conf"
    main.write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\ndaemon off;\nevents {{}}\n"
        f"http {{\n  access_log off;\n{temp_paths}\n  include {tmp}/site.conf;\n}}\n"
    )
    return main


@pytest.mark.usefixtures("nginx_tools")
def test_nginx_config_is_valid(tmp_path: Path) -> None:
    main = _nginx_conf(tmp_path, free_port(), free_port())
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def behind_nginx(nginx_tools: None, tmp_path: Path) -> Iterator[tuple[str, str, PushBuilder]]:
    """gunicorn behind deploy/nginx.conf; yields its http and https base URLs and a WeChat."""
    env = {
        "WX_TOKEN": TOKEN,
        "WX_APPID": APPID,
        "WX_AES_KEY": AES_KEY,
        "WX_HANDLERS": "tests.service_handlers",
        "WX_DEADLINE": "1",
        "WX_STORE_URL": f"sqlite:///{tmp_path}/ledger.db",
    }
    http_port, https_port = free_port(), free_port()
    main = _nginx_conf(tmp_path, http_port, https_port)
    with gunicorn(env, workers=1) as upstream:
        site = (tmp_path / "site.conf").read_text()
        (tmp_path / "site.conf").write_text(
            site.replace("server 127.0.0.1:8000;", f"server {upstream.removeprefix('http://')};")
        )
        nginx = subprocess.Popen(["nginx", "-p", str(tmp_path), "-c", str(main)])
        try:
            url = f"http://127.0.0.1:{http_port}"
            wait_for_port(http_port, nginx, timeout=10)
            https_url = f"https://127.0.0.1:{https_port}"
            yield url, https_url, PushBuilder(load_settings(env, dotenv=False))
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)


def test_pushes_pass_and_a_lapse_reaches_wechat_as_no_answer(
    behind_nginx: tuple[str, str, PushBuilder],
) -> None:
    url, _, wechat = behind_nginx
    query, body = wechat.build(wechat.complete({"MsgType": "text", "Content": "through nginx"}))
    assert wechat.read(*request("POST", url + "/wx", query, body)).reply == TextReply(
        "echo: through nginx"
    )
    slow_query, slow_body = wechat.build(
        wechat.complete({"MsgType": "text", "Content": "sleep 1.5"})
    )
    assert request("POST", url + "/wx", slow_query, slow_body) == (NO_ANSWER, b"")
    retry = wechat.read(*request("POST", url + "/wx", slow_query, slow_body))
    assert retry.reply == TextReply("slept 1.5")
    assert request("GET", url + "/elsewhere")[0] == 301


@pytest.mark.parametrize(
    ("scheme", "says"),
    [
        ("https", "the https certificate is not trusted (self-signed certificate)"),
        ("http", "400: an http request reached an https port"),
    ],
)
def test_check_explains_https_mistakes(
    behind_nginx: tuple[str, str, PushBuilder], scheme: str, says: str
) -> None:
    _, https_url, _ = behind_nginx
    url = https_url.replace("https:", f"{scheme}:") + "/wx"
    result = run_cli("check", "--url", url, env={"WX_TOKEN": TOKEN})
    assert result.returncode == 1, result.stdout
    assert says in result.stdout
    assert "cause:" in result.stdout and "fix:" in result.stdout


def test_systemd_unit_runs_gunicorn_from_the_virtualenv() -> None:
    unit = (DEPLOY / "wx-push.service").read_text()
    for line in (
        "ExecStart=/srv/wx-push/.venv/bin/gunicorn -c gunicorn.conf.py wsgi:app",
        "EnvironmentFile=/srv/wx-push/.env",
        "WorkingDirectory=/srv/wx-push",
        "Restart=on-failure",
        "NoNewPrivileges=true",
    ):
        assert line in unit
    if shutil.which("systemd-analyze"):
        result = subprocess.run(
            ["systemd-analyze", "verify", str(DEPLOY / "wx-push.service")],
            capture_output=True,
            text=True,
        )
        assert "Unknown key" not in result.stderr and "Unknown section" not in result.stderr
