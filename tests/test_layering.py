"""The layers of STYLE.md habit 5, read from the source with ``ast`` (importing would not do:
importing ``app.wechat`` runs ``app/__init__.py``, which imports Flask).

* ``app/wechat/`` is the sans-IO core: no ``flask``, no ``werkzeug``, no ``os.environ`` or
  ``os.getenv``, and no ``app.*`` module outside ``app.wechat``.
* ``app/store/`` is an I/O service below the Flask glue: no ``flask`` or ``werkzeug``.
* ``app/lifecycle/`` (the life of a push) is below the Flask glue too: no ``flask`` or
  ``werkzeug``; the view hands it pushes.
* ``app/console/`` (the ``wx`` commands) sits on top: only the entry points ``app/__init__.py``
  and ``app/__main__.py`` import it, so the service runs without the commands behind it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WEB_FRAMEWORK = ("flask", "werkzeug")


@dataclass(frozen=True)
class Rules:
    #: The dotted package the scanned files live in, for resolving relative imports.
    package: str
    #: Modules that must not be imported, nor anything inside them.
    forbidden: tuple[str, ...]
    #: Whether ``app.*`` imports must stay inside ``package``.
    stay_inside: bool
    #: Whether ``os.environ`` / ``os.getenv`` / ``os.putenv`` are forbidden.
    no_environ: bool


CORE = Rules("app.wechat", WEB_FRAMEWORK, stay_inside=True, no_environ=True)
STORE = Rules("app.store", WEB_FRAMEWORK, stay_inside=False, no_environ=False)
LIFECYCLE = Rules("app.lifecycle", WEB_FRAMEWORK, stay_inside=False, no_environ=False)
BELOW_CONSOLE = Rules("app", ("app.console",), stay_inside=False, no_environ=False)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names, relative imports included."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _names_modules(target: str, rules: Rules) -> bool:
    """Whether ``from target import x`` may import a module the rules judge by its name."""
    return any(
        _is_within(name, target) and name != target for name in (rules.package, *rules.forbidden)
    )


def violations(source: str, module: str, rules: Rules, *, is_package: bool = False) -> list[str]:
    """Every layering violation in ``source``, as ``line: what``."""
    found: list[str] = []

    def check_import(name: str, line: int) -> None:
        if any(_is_within(name, forbidden) for forbidden in rules.forbidden):
            found.append(f"{line}: imports {name}")
        if rules.stay_inside and _is_within(name, "app") and not _is_within(name, rules.package):
            found.append(f"{line}: imports {name}, outside {rules.package}")

    environ_names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check_import(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node, module, is_package)
            if target and _names_modules(target, rules):
                # "from app import views": the names imported are the modules that matter.
                for alias in node.names:
                    check_import(f"{target}.{alias.name}", node.lineno)
            else:
                check_import(target, node.lineno)
            if rules.no_environ and target == "os":
                for alias in node.names:
                    if alias.name in ("environ", "getenv", "putenv", "environb", "getenvb"):
                        found.append(f"{node.lineno}: imports os.{alias.name}")
                        environ_names.add(alias.asname or alias.name)
        elif isinstance(node, ast.Attribute) and rules.no_environ:
            if (
                isinstance(node.value, ast.Name)
                and node.value.id == "os"
                and node.attr in ("environ", "getenv", "putenv", "environb", "getenvb")
            ):
                found.append(f"{node.lineno}: uses os.{node.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
            called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
            if called in ("__import__", "import_module") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    check_import(first.value, node.lineno)
    return found


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


CORE_FILES = _files("app/wechat")
STORE_FILES = _files("app/store")
LIFECYCLE_FILES = _files("app/lifecycle")
#: Everything in ``app/`` but the console and the entry points that expose it.
BELOW_CONSOLE_FILES = [
    path
    for path in _files("app")
    if not path.is_relative_to(ROOT / "app/console")
    and path.relative_to(ROOT).as_posix() not in ("app/__init__.py", "app/__main__.py")
]


def test_the_scanned_folders_are_not_empty() -> None:
    names = {path.name for path in CORE_FILES}
    assert {
        "__init__.py",
        "errors.py",
        "signature.py",
        "crypto.py",
        "codec.py",
        "envelope.py",
    } <= names
    assert STORE_FILES
    assert ROOT / "app/lifecycle/service.py" in LIFECYCLE_FILES
    assert ROOT / "app/views.py" in BELOW_CONSOLE_FILES
    assert (ROOT / "app/console/commands.py").is_file()


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_protocol_core_is_sans_io(path: Path) -> None:
    found = violations(
        path.read_text("utf-8"), _module_name(path), CORE, is_package=path.name == "__init__.py"
    )
    assert found == [], f"{path.relative_to(ROOT)} breaks STYLE habit 5: {found}"


@pytest.mark.parametrize("path", STORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_store_never_imports_the_web_framework(path: Path) -> None:
    found = violations(
        path.read_text("utf-8"), _module_name(path), STORE, is_package=path.name == "__init__.py"
    )
    assert found == [], f"{path.relative_to(ROOT)} imports Flask glue: {found}"


@pytest.mark.parametrize("path", LIFECYCLE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_life_of_a_push_never_imports_the_web_framework(path: Path) -> None:
    found = violations(
        path.read_text("utf-8"),
        _module_name(path),
        LIFECYCLE,
        is_package=path.name == "__init__.py",
    )
    assert found == [], f"{path.relative_to(ROOT)} imports Flask glue: {found}"


@pytest.mark.parametrize("path", BELOW_CONSOLE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_only_the_entry_points_import_the_console(path: Path) -> None:
    found = violations(
        path.read_text("utf-8"),
        _module_name(path),
        BELOW_CONSOLE,
        is_package=path.name == "__init__.py",
    )
    assert found == [], f"{path.relative_to(ROOT)} imports the console: {found}"


# -- the scanner itself: it must see what it is meant to refuse --------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "import flask",
        "import flask.json as j",
        "from flask import current_app",
        "from werkzeug.exceptions import BadRequest",
        "import werkzeug",
        "import os\nx = os.environ['WX_TOKEN']",
        "import os\nx = os.environ.get('WX_TOKEN')",
        "import os\nx = os.getenv('WX_TOKEN')",
        "from os import environ",
        "from os import getenv as g",
        "import app.views",
        "from app import views",
        "from app.store import open_store",
        "from .. import router",
        "from ..ledger import Ledger",
        "def f():\n    import flask",
        "import importlib\nimportlib.import_module('flask')",
        "__import__('app.views')",
    ],
    ids=[
        "import-flask",
        "import-submodule",
        "from-flask",
        "werkzeug",
        "import-werkzeug",
        "environ-item",
        "environ-get",
        "getenv",
        "from-os-environ",
        "from-os-getenv",
        "app-views",
        "from-app",
        "app-store",
        "relative-up",
        "relative-up-module",
        "lazy-import",
        "import-module",
        "dunder-import",
    ],
)
def test_scanner_catches_core_violations(source: str) -> None:
    assert violations(source, "app.wechat.codec", CORE) != []


@pytest.mark.parametrize(
    "source",
    [
        "from . import codec",
        "from .errors import MalformedBody",
        "from app.wechat.codec import parse",
        "from app import wechat",
        "from .. import wechat",
        "import app.wechat.crypto",
        "import os.path",
        "import json, hmac, hashlib",
        "from lxml import etree",
        "environ = {}\nx = environ['a']",
    ],
)
def test_scanner_accepts_the_core_s_own_imports(source: str) -> None:
    assert violations(source, "app.wechat.codec", CORE) == []


def test_scanner_resolves_package_relative_imports() -> None:
    # In app/wechat/__init__.py, "from . import x" stays inside; "from .. import x" does not.
    assert violations("from . import codec", "app.wechat", CORE, is_package=True) == []
    assert violations("from .. import views", "app.wechat", CORE, is_package=True) != []


def test_store_rules_allow_os_but_not_flask() -> None:
    assert violations("import os\nos.environ.get('X')", "app.store.sqlite", STORE) == []
    assert violations("from flask import g", "app.store.sqlite", STORE) != []


@pytest.mark.parametrize(
    "source",
    [
        "from . import console",
        "from .console import wx",
        "from .console.simulator import SAMPLES",
        "from app.console import commands",
        "import app.console.probe",
    ],
)
def test_scanner_catches_imports_of_the_console(source: str) -> None:
    assert violations(source, "app.extension", BELOW_CONSOLE) != []


def test_console_rules_allow_the_rest_of_app() -> None:
    source = "from . import demo, monitoring\nfrom .api import WeChatAPI\nimport app.testing"
    assert violations(source, "app.extension", BELOW_CONSOLE) == []
    assert violations("from .. import wechat", "app.api.client", BELOW_CONSOLE) == []
