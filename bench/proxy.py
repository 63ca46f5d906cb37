"""nginx in front of a benchmark's gunicorn, running a deploy kit such as deploy/.

The kit is installed under a temporary directory the way deploy/README.md installs it on a
host: ``nginx.conf`` (and ``nginx-https.conf`` where the kit has one) as conf.d sites, inside
the kit's ``nginx-main.conf``, or inside a stock main config (Debian's ``worker_processes
auto``, ``worker_connections 768``) where the kit has none. Only what a loopback run must change
is changed: listen ports become free loopback ports (IPv6 listens go), certificates a throwaway
self-signed one, logs, pid and webroot move into the directory, ``include /etc/nginx/X`` of a
kit file reads that file, and the upstream is the gunicorn under test.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port, wait_for_port

_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@dataclass(frozen=True)
class Proxy:
    """A running nginx: where its plain and TLS servers listen, and its directory."""

    http: str
    https: str
    root: Path


@dataclass(frozen=True)
class Config:
    """nginx's main config file for a run and the ports its servers listen on."""

    main: Path
    http: int
    https: int


def installed(text: str, kit: Path, tmp: Path, *, upstream: str, http: int, https: int) -> str:
    """A kit file rewritten for loopback, with every path under ``tmp``."""
    text = re.sub(r"^\s*listen\s+\[::\][^;]*;", "", text, flags=re.M)
    text = re.sub(r"listen\s+80\b", f"listen 127.0.0.1:{http}", text)
    text = re.sub(r"listen\s+443\b", f"listen 127.0.0.1:{https}", text)
    text = re.sub(r"ssl_certificate\s+[^;]+;", f"ssl_certificate {tmp}/cert.pem;", text)
    text = re.sub(r"ssl_certificate_key\s+[^;]+;", f"ssl_certificate_key {tmp}/key.pem;", text)
    text = re.sub(r"server\s+127\.0\.0\.1:8000\b", f"server {upstream}", text)
    text = text.replace("/var/log/nginx/", f"{tmp}/").replace("/var/www/", f"{tmp}/www/")

    def from_kit(match: re.Match[str]) -> str:
        local = kit / match.group(1)
        return f"include {local};" if local.exists() else match.group(0)

    return re.sub(r"include\s+/etc/nginx/([^;\s*]+);", from_kit, text)


def write_config(
    kit: Path, tmp: Path, *, upstream: str, worker_connections: int | None = None
) -> Config:
    """Install the kit in ``kit`` under ``tmp``; ``worker_connections`` overrides the kit's."""
    http, https = free_port(), free_port()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(tmp / "key.pem"), "-out", str(tmp / "cert.pem")]
        + ["-subj", "/CN=wx.example.com"],
        check=True,
        capture_output=True,
    )
    sites = tmp / "conf.d"
    sites.mkdir(exist_ok=True)
    # The names deploy/README.md installs them as: nginx reads conf.d in name order, the port
    # 80 server with the settings both share first.
    for name, site in (
        ("nginx.conf", "wx-push-http.conf"),
        ("nginx-https.conf", "wx-push-https.conf"),
    ):
        if (kit / name).exists():
            text = (kit / name).read_text()
            (sites / site).write_text(
                installed(text, kit, tmp, upstream=upstream, http=http, https=https)
            )
    temp_paths = "".join(f"    {kind}_temp_path {tmp};\n" for kind in _TEMP_PATHS)
    if (kit / "nginx-main.conf").exists():
        main = installed(
            (kit / "nginx-main.conf").read_text(),
            kit,
            tmp,
            upstream=upstream,
            http=http,
            https=https,
        )
        main = re.sub(r"^user\s+[^;]+;", "user root;", main, flags=re.M)
        main = re.sub(r"^pid\s+[^;]+;", f"pid {tmp}/nginx.pid;\ndaemon off;", main, flags=re.M)
        main = main.replace(
            "include /etc/nginx/conf.d/*.conf;", f"{temp_paths}    include {sites}/*.conf;"
        )
    else:
        main = (
            f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\ndaemon off;\n"
            "worker_processes auto;\nevents { worker_connections 768; }\n"
            f"http {{\n  access_log off;\n{temp_paths}  include {sites}/*.conf;\n}}\n"
        )
    if worker_connections is not None:
        main = re.sub(
            r"worker_connections\s+\d+;", f"worker_connections {worker_connections};", main
        )
    (tmp / "nginx.conf").write_text(main)
    return Config(tmp / "nginx.conf", http, https)


@contextmanager
def nginx(
    kit: Path, upstream: str, tmp: Path, *, worker_connections: int | None = None
) -> Iterator[Proxy]:
    """Run nginx with the kit in ``kit`` in front of ``upstream`` ("host:port")."""
    config = write_config(kit, tmp, upstream=upstream, worker_connections=worker_connections)
    process = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(config.main)])
    try:
        wait_for_port(config.https, process, timeout=10)
        yield Proxy(f"127.0.0.1:{config.http}", f"127.0.0.1:{config.https}", tmp)
    finally:
        process.terminate()
        process.wait(timeout=10)
