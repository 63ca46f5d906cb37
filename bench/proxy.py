"""nginx in front of a benchmark's gunicorn, with a site config such as deploy/nginx.conf.

The site config is used as written except for what a loopback run must change: its listen
ports become free loopback ports (IPv6 listens go), its certificate a throwaway self-signed
one, its includes of /etc/nginx/… the files beside it, and its upstream the gunicorn under
test. The main config around it is a stock one (Debian's values: ``worker_processes auto``,
``worker_connections 768``) unless told otherwise.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.nginxkit import self_signed
from tests.servers import free_port, wait_for_port


@dataclass(frozen=True)
class Proxy:
    """A running nginx: where its plain and TLS servers listen."""

    http: str
    https: str


def site_config(source: Path, tmp: Path, *, upstream: str, http: int, https: int) -> str:
    """``source`` rewritten for loopback, a certificate in ``tmp`` and ``upstream``."""
    self_signed(tmp)
    site = source.read_text()
    https_site = source.parent / "nginx-https.conf"  # the deploy kit's 443 server, installed after
    if https_site.exists():  # the certificate exists; here the test certificate stands in
        site += "\n" + https_site.read_text()
    site = re.sub(r"^\s*listen\s+\[::\][^;]*;", "", site, flags=re.M)
    site = re.sub(r"listen\s+80\b", f"listen 127.0.0.1:{http}", site)
    site = re.sub(r"listen\s+443\b", f"listen 127.0.0.1:{https}", site)
    site = re.sub(r"ssl_certificate\s+[^;]+;", f"ssl_certificate {tmp}/cert.pem;", site)
    site = re.sub(r"ssl_certificate_key\s+[^;]+;", f"ssl_certificate_key {tmp}/key.pem;", site)
    site = re.sub(r"server\s+127\.0\.0\.1:8000\b", f"server {upstream}", site)

    def beside(match: re.Match[str]) -> str:
        local = source.parent / match.group(1)
        return f"include {local};" if local.exists() else match.group(0)

    return re.sub(r"include\s+/etc/nginx/([^;\s]+);", beside, site)


@dataclass(frozen=True)
class Config:
    """nginx's main config file for a run and the ports its servers listen on."""

    main: Path
    http: int
    https: int


def write_config(source: Path, tmp: Path, *, upstream: str, worker_connections: int) -> Config:
    """Write ``tmp/nginx.conf`` around ``source`` rewritten for loopback (``tmp/site.conf``)."""
    http, https = free_port(), free_port()
    (tmp / "site.conf").write_text(
        site_config(source, tmp, upstream=upstream, http=http, https=https)
    )
    temp_paths = "\n".join(
        f"  {kind}_temp_path {tmp};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp / "nginx.conf"
    main.write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\ndaemon off;\nworker_processes auto;\n"
        f"events {{ worker_connections {worker_connections}; }}\n"
        f"http {{\n  access_log off;\n{temp_paths}\n  include {tmp}/site.conf;\n}}\n"
    )
    return Config(main, http, https)


@contextmanager
def nginx(
    source: Path, upstream: str, tmp: Path, *, worker_connections: int = 768
) -> Iterator[Proxy]:
    """Run nginx with the site config ``source`` in front of ``upstream`` ("host:port")."""
    config = write_config(source, tmp, upstream=upstream, worker_connections=worker_connections)
    process = subprocess.Popen(["nginx", "-p", str(tmp), "-c", str(config.main)])
    try:
        wait_for_port(config.https, process, timeout=10)
        yield Proxy(f"127.0.0.1:{config.http}", f"127.0.0.1:{config.https}")
    finally:
        process.terminate()
        process.wait(timeout=10)
