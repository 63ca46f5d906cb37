"""The deploy kit's nginx files installed under a test's directory, to run in a real nginx."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.servers import ROOT

DEPLOY = ROOT / "deploy"
# .ci/run installs both and sets this, so that CI never skips the deploy kit's tests.
REQUIRE_NGINX = os.environ.get("WX_TEST_REQUIRE_NGINX") == "1"


def require_nginx() -> None:
    """Skip the test (fail it under WX_TEST_REQUIRE_NGINX=1) where nginx or openssl is missing."""
    missing = [tool for tool in ("nginx", "openssl") if shutil.which(tool) is None]
    if missing:
        reason = f"{' and '.join(missing)} not installed (apt-get install nginx-light openssl)"
        if REQUIRE_NGINX:
            pytest.fail(reason)
        pytest.skip(reason)


def installed(name: str, tmp: Path, ports: tuple[int, int], upstream: str) -> str:
    """deploy/<name> as installed on a host, with loopback ports and every path under tmp."""
    http_port, https_port = ports
    text = (DEPLOY / name).read_text()
    for path, here in (
        ("/etc/letsencrypt/live/wx.example.com/fullchain.pem", f"{tmp}/cert.pem"),
        ("/etc/letsencrypt/live/wx.example.com/privkey.pem", f"{tmp}/key.pem"),
        ("/etc/nginx/wx-push-proxy.conf", str(DEPLOY / "wx-push-proxy.conf")),
        ("/var/log/nginx/", f"{tmp}/"),
        ("/var/www/acme", f"{tmp}/acme"),
        ("server 127.0.0.1:8000;", f"server {upstream};"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen [::]:80;", ""),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
    ):
        text = text.replace(path, here)
    return text


def self_signed(tmp: Path) -> None:
    """A throwaway certificate for wx.example.com: tmp/cert.pem and tmp/key.pem."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")]
        + ["-subj", "/CN=wx.example.com"],
        check=True,
        capture_output=True,
    )


def main_conf(tmp: Path, conf_d: Path) -> Path:
    """deploy/nginx-main.conf as tmp/nginx.conf, reading its sites from conf_d."""
    temp_paths = "".join(
        f"    {kind}_temp_path {tmp};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = installed("nginx-main.conf", tmp, (80, 443), "127.0.0.1:8000")
    for path, here in (
        # Workers must read the test's private directories (the ACME webroot).
        ("user www-data;", "user root;"),
        ("pid /run/nginx.pid;", f"pid {tmp}/nginx.pid;\ndaemon off;"),
        ("include /etc/nginx/conf.d/*.conf;", f"{temp_paths}    include {conf_d}/*.conf;"),
    ):
        assert path in main, f"nginx-main.conf no longer has {path!r}"
        main = main.replace(path, here)
    (tmp / "nginx.conf").write_text(main)
    return tmp / "nginx.conf"


def host_install(
    tmp: Path, ports: tuple[int, int], *, upstream: str = "127.0.0.1:8000", https: bool = True
) -> Path:
    """The kit installed under tmp as deploy/README.md installs it on a host; its nginx.conf.

    ``https=False`` is the bootstrap's first step: port 80 only, no certificate yet.
    """
    conf_d = tmp / "conf.d"
    conf_d.mkdir(exist_ok=True)
    (conf_d / "wx-push-http.conf").write_text(installed("nginx.conf", tmp, ports, upstream))
    if https:
        self_signed(tmp)
        (conf_d / "wx-push-https.conf").write_text(
            installed("nginx-https.conf", tmp, ports, upstream)
        )
    return main_conf(tmp, conf_d)


def nginx_t(main: Path) -> subprocess.CompletedProcess[str]:
    """``nginx -t`` of a configuration written by main_conf()."""
    return subprocess.run(
        ["nginx", "-t", "-p", str(main.parent), "-c", str(main)], capture_output=True, text=True
    )
