"""The container kit, as far as a machine without a Docker daemon can check it: the
Dockerfile's files, command and health check run from what the image would hold; compose.yaml
reads and refers only to what exists; the nginx container's set-up script installs a kit
that nginx accepts."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import TOKEN
from tests.nginxkit import DEPLOY, main_conf, nginx_t, require_nginx, self_signed
from tests.servers import NO_ANSWER, ROOT, free_port, request, wait_for_port


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip().removesuffix("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            if pending.strip():
                lines.append(pending.strip())
            pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _only(instruction: str) -> str:
    found = [arguments for name, arguments in _instructions() if name == instruction]
    assert len(found) == 1, f"{instruction}: {found}"
    return found[0]


def _exec_form(arguments: str) -> list[str]:
    """The JSON array of CMD or HEALTHCHECK CMD: run as is, with no shell in between."""
    command = json.loads(arguments[arguments.index("[") :])
    assert isinstance(command, list) and all(isinstance(part, str) for part in command)
    return command


def _copy_sources() -> list[str]:
    return [
        source
        for name, arguments in _instructions()
        if name == "COPY"
        for source in arguments.split()[:-1]
        if not source.startswith("--")
    ]


def _ignored(path: str) -> bool:
    """Whether .dockerignore keeps path out of the build context (its patterns are simple)."""
    excluded = False
    for pattern in (ROOT / ".dockerignore").read_text().splitlines():
        if not pattern.strip() or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").removeprefix("**/")
        parts = Path(path).parts
        if any(fnmatch.fnmatch(part, pattern) for part in parts) or fnmatch.fnmatch(path, pattern):
            excluded = not negated
    return excluded


def test_the_image_is_small_and_runs_unprivileged() -> None:
    assert _only("FROM") == "python:3.11-slim"
    assert _only("USER") == "wxpush"
    assert any("useradd --system" in args for name, args in _instructions() if name == "RUN")
    assert _only("VOLUME") == "/app/instance"
    assert "GUNICORN_BIND=0.0.0.0:8000" in _only("ENV").split()
    assert _exec_form(_only("CMD"))[:3] == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert _exec_form(_only("CMD"))[-1] == "wsgi:app"


def test_what_the_image_copies_exists_and_is_sent_to_the_builder() -> None:
    sources = _copy_sources()
    assert {"requirements.txt", "app/", "*.py"} <= set(sources)
    for source in sources:
        matches = list(ROOT.glob(source.rstrip("/")))
        assert matches, f"COPY {source}: nothing in the repository matches"
        for match in matches:
            assert not _ignored(str(match.relative_to(ROOT))), f"{match} is in .dockerignore"
    for secret_or_state in (".env", ".venv", ".git", "instance", "tests"):
        assert _ignored(secret_or_state), f"{secret_or_state} would reach the image"
    assert {"config.py", "wsgi.py", "gunicorn.conf.py"} <= {p.name for p in ROOT.glob("*.py")}


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """/app as the Dockerfile fills it: what its COPY lines take, and nothing else."""
    app = tmp_path / "app"
    app.mkdir()
    for source in _copy_sources():
        for match in ROOT.glob(source.rstrip("/")):
            if match.is_dir():
                shutil.copytree(match, app / match.name, ignore=shutil.ignore_patterns("__py*"))
            else:
                shutil.copy(match, app / match.name)
    return app


@pytest.fixture
def container(image_dir: Path) -> Iterator[int]:
    """The image's CMD run in image_dir with its ENV, on a free port in place of 8000."""
    port = free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "HOME": str(image_dir),
        "WX_TOKEN": TOKEN,
    }
    for setting in _only("ENV").split():
        name, value = setting.split("=", 1)
        env[name] = value.replace(":8000", f":{port}")
    process = subprocess.Popen(
        _exec_form(_only("CMD")),
        cwd=image_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, timeout=20)
        # The master listens before a worker has booted; a worker that cannot boot stops it.
        deadline = time.monotonic() + 20
        while request("GET", f"http://127.0.0.1:{port}/healthz")[0] == NO_ANSWER:
            assert process.poll() is None, "gunicorn exited: the image cannot boot"
            assert time.monotonic() < deadline, "no worker answered within 20 s"
            time.sleep(0.1)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _health_check(port: int) -> subprocess.CompletedProcess[str]:
    command = [part.replace(":8000/", f":{port}/") for part in _exec_form(_only("HEALTHCHECK"))]
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:]], capture_output=True, text=True, timeout=30
    )


def test_the_command_serves_from_the_image_files_and_the_health_check_sees_it(
    container: int, image_dir: Path
) -> None:
    assert request("GET", f"http://127.0.0.1:{container}/healthz")[0] == 200
    assert _health_check(container).returncode == 0
    assert (image_dir / "instance" / "wx-push.db").exists()


def test_the_health_check_fails_without_a_server() -> None:
    result = _health_check(free_port())
    assert result.returncode == 1
    assert "Connection refused" in result.stderr


def _compose() -> dict[str, dict[str, dict[str, object]]]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def test_compose_runs_the_service_behind_nginx_on_redis() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"app", "nginx", "redis"} <= set(services)
    app = services["app"]
    assert app["build"] == "."
    assert app["env_file"] == ".env"
    assert app["environment"] == {
        "WX_STORE_URL": "redis://redis:6379/0",
        # nginx is another container: its X-Real-IP names clients in refusal log lines
        "WX_TRUSTED_PROXIES": "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16",
    }
    assert "ports" not in app
    assert services["nginx"]["ports"] == ["80:80", "443:443"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):  # type: ignore[attr-defined]
            assert dependency in services, f"{name} depends on {dependency}"


def test_compose_mounts_only_what_exists() -> None:
    compose = _compose()
    declared = set(compose.get("volumes", {}))
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):  # type: ignore[attr-defined]
            source, target = volume.split(":")[:2]
            assert target.startswith("/")
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"
            else:
                assert source in declared, f"{name} mounts volume {source}, not declared"
    hook = ROOT / "deploy" / "nginx-container.sh"
    # The nginx image runs only the executable files of /docker-entrypoint.d/.
    assert hook.stat().st_mode & stat.S_IXUSR


def _container_kit(
    tmp: Path, *, certificate: bool
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Run deploy/nginx-container.sh as the nginx image would, on a copy of deploy/ whose
    paths point under tmp; return nginx.conf and the script's run."""
    kit = tmp / "kit"
    kit.mkdir()
    for name in ("nginx.conf", "nginx-https.conf", "wx-push-proxy.conf"):
        (kit / name).write_text(
            (DEPLOY / name)
            .read_text()
            .replace("/etc/letsencrypt/live/wx.example.com/fullchain.pem", f"{tmp}/cert.pem")
            .replace("/etc/letsencrypt/live/wx.example.com/privkey.pem", f"{tmp}/key.pem")
            .replace("/var/www/acme", f"{tmp}/acme")
        )
    if certificate:
        self_signed(tmp)
    conf_d = tmp / "conf.d"
    conf_d.mkdir()
    (conf_d / "default.conf").write_text("server { listen 80; }\n")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WX_NGINX_KIT": str(kit),
        "WX_NGINX_CONF_D": str(conf_d),
        "WX_UPSTREAM": f"127.0.0.1:{free_port()}",
    }
    run = subprocess.run(
        ["sh", str(DEPLOY / "nginx-container.sh")], env=env, capture_output=True, text=True
    )
    return main_conf(tmp, conf_d), run


def test_the_nginx_container_starts_on_port_80_until_there_is_a_certificate(
    tmp_path: Path,
) -> None:
    require_nginx()
    main, run = _container_kit(tmp_path, certificate=False)
    assert run.returncode == 0, run.stderr
    assert "no certificate at" in run.stderr
    assert sorted(p.name for p in (tmp_path / "conf.d").iterdir()) == ["wx-push-http.conf"]
    site = (tmp_path / "conf.d" / "wx-push-http.conf").read_text()
    assert "access_log /dev/stdout wx_push;" in site
    assert "error_log /dev/stderr crit;" in site
    for host_only in ("server 127.0.0.1:8000;", "/var/log/", "/etc/nginx/wx-push-proxy.conf"):
        assert host_only not in site
    assert nginx_t(main).returncode == 0, nginx_t(main).stderr


def test_the_nginx_container_adds_https_once_the_certificate_is_there(tmp_path: Path) -> None:
    require_nginx()
    main, run = _container_kit(tmp_path, certificate=True)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "conf.d").iterdir()) == [
        "wx-push-http.conf",
        "wx-push-https.conf",
    ]
    assert nginx_t(main).returncode == 0, nginx_t(main).stderr
