"""Kindly's architecture rules, enforced on every test run.

1. The core is pure. Importing every module of ``plugin.core`` loads no library that
   talks to the world or draws a user interface (smtplib, ssl, socket, requests,
   sqlalchemy, jinja2, click, rich), no connector from ``integrations``, and no part of
   ``plugin`` outside ``plugin.core``.
2. Only the composition root, ``plugin/app/``, imports ``integrations``.
3. Only ``integrations/http.py`` imports ``requests``.
4. The modules of ``plugin/`` and ``integrations/`` import each other without a cycle.
5. The packages of ``plugin/`` (its sub-packages and its top-level modules) import each
   other without a cycle, in at most 6 levels.

Rule 1 is checked in a fresh interpreter, so it sees every module the core pulls in, at
any depth. Rules 2 to 5 read the source with ``ast``: an import counts wherever it is
written, at the top, inside a function, or under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("plugin", "integrations")
IMPURE_LIBRARIES = ("smtplib", "ssl", "socket", "requests", "sqlalchemy", "jinja2", "click", "rich")
MAX_PACKAGE_LEVELS = 6

Graph = Mapping[str, set[str]]


# -- reading the source ------------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> dict[str, Path]:
    """Every module of the packages, by dotted name."""
    return {
        module_name(path, root): path
        for package in packages
        for path in sorted((root / package).rglob("*.py"))
    }


def imports(module: str, path: Path, modules: Iterable[str]) -> dict[str, int]:
    """What the file imports anywhere in it, as absolute names, with the first line of each.

    ``from x import y`` names the module ``x.y`` when there is one in ``modules``, else ``x``.
    """
    known = set(modules)
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: None if path.name == "__init__.py" else -1]
                package = package[: len(package) - node.level + 1]
                base = ".".join([*package, base] if base else package)
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        for name in names:
            found.setdefault(name, node.lineno)
    return found


def is_under(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def module_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Each module and the modules of ``modules`` it imports (stdlib and third party left out)."""
    return {
        module: {name for name in imports(module, path, modules) if name in modules} - {module}
        for module, path in modules.items()
    }


def package_of(module: str) -> str:
    """``plugin.core.money`` -> ``plugin.core``; ``plugin.run`` stays ``plugin.run``."""
    return ".".join(module.split(".")[:2])


def package_graph(graph: Graph) -> dict[str, set[str]]:
    """The module graph of ``plugin`` at package grain, without a package's imports of itself."""
    packages: dict[str, set[str]] = {}
    for module, imported in graph.items():
        if is_under(module, "plugin"):
            node = package_of(module)
            packages.setdefault(node, set()).update(
                package_of(name) for name in imported if is_under(name, "plugin")
            )
            packages[node].discard(node)
    return packages


def cycle(graph: Graph) -> list[str] | None:
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as error:
        return list(reversed(error.args[1]))  # importer first
    return None


def longest_path(graph: Graph) -> list[str]:
    """The longest chain of imports, importer first (the graph must be acyclic)."""
    paths: dict[str, list[str]] = {}
    for node in TopologicalSorter(graph).static_order():
        below = max((paths[name] for name in graph.get(node, ())), key=len, default=[])
        paths[node] = [node, *below]
    return max(paths.values(), key=len, default=[])


def import_lines(root: Path = ROOT, packages: Iterable[str] = PACKAGES) -> list[str]:
    """``path:line imports name`` for every import in the packages."""
    modules = sources(root, packages)
    return [
        f"{path.relative_to(root).as_posix()}:{line} imports {name}"
        for module, path in modules.items()
        for name, line in imports(module, path, modules).items()
    ]


def imported(line: str) -> str:
    return line.rpartition(" imports ")[2]


# -- 1. the core is pure -----------------------------------------------------------------------

# Imports every module of plugin.core in a fresh interpreter and prints, for each module
# loaded, the module whose code imported it (None: loaded before, at interpreter start-up).
CORE_PROBE = """
import importlib, json, pkgutil, sys

importer = {}
MACHINERY = {
    "importlib", "_frozen_importlib", "_frozen_importlib_external",
    "importlib._bootstrap", "importlib._bootstrap_external",  # the same two, once renamed
}

class Witness:
    @staticmethod
    def find_spec(name, path=None, target=None):
        frame = sys._getframe(1)
        while frame and frame.f_globals.get("__name__") in MACHINERY:
            frame = frame.f_back
        importer.setdefault(name, frame.f_globals.get("__name__") if frame else None)
        return None

sys.meta_path.insert(0, Witness)
import plugin.core
for info in pkgutil.walk_packages(plugin.core.__path__, "plugin.core."):
    importlib.import_module(info.name)
print(json.dumps({name: importer.get(name) for name in sys.modules}))
"""


def is_impure(name: str) -> bool:
    if any(is_under(name, library) for library in (*IMPURE_LIBRARIES, "integrations")):
        return True
    return is_under(name, "plugin") and name != "plugin" and not is_under(name, "plugin.core")


def import_chain(name: str, importer: Mapping[str, str | None]) -> str:
    chain = [name]
    while (
        (parent := importer.get(chain[-1])) is not None
        and parent != "__main__"
        and parent not in chain
    ):
        chain.append(parent)
    start = "" if importer.get(chain[-1]) else "(loaded at interpreter start-up) "
    return start + " -> ".join(reversed(chain))


def test_the_core_is_pure_by_its_imports() -> None:
    completed = subprocess.run(
        [sys.executable, "-c", CORE_PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    importer: dict[str, str | None] = json.loads(completed.stdout)
    assert set(sources(packages=["plugin/core"])) <= set(importer), "every core module loaded"
    impure = sorted(name for name in importer if is_impure(name))
    assert not impure, "plugin.core loads:\n" + "\n".join(
        import_chain(name, importer) for name in impure
    )


def test_the_core_names_nothing_impure_even_in_imports_that_have_not_run() -> None:
    lines = import_lines(packages=["plugin/core"])
    assert lines, "the core imports something"
    impure = [line for line in lines if is_impure(imported(line))]
    assert not impure, "\n".join(impure)


# -- 2. and 3. who may import what -------------------------------------------------------------


def test_only_the_composition_root_imports_integrations() -> None:
    outside_the_root = [
        line
        for line in import_lines(packages=["plugin"])
        if is_under(imported(line), "integrations") and not line.startswith("plugin/app/")
    ]
    assert not outside_the_root, "\n".join(outside_the_root)


def test_only_the_http_module_imports_requests_even_inside_functions() -> None:
    importers = [line for line in import_lines() if is_under(imported(line), "requests")]
    assert importers, "integrations/http.py imports requests"
    elsewhere = [line for line in importers if not line.startswith("integrations/http.py:")]
    assert not elsewhere, "\n".join(elsewhere)


# -- 4. and 5. no cycles, a bounded height -----------------------------------------------------


def test_no_import_cycle_between_modules() -> None:
    found = cycle(module_graph(sources()))
    assert found is None, "import cycle: " + " -> ".join(found or [])


def test_the_packages_of_plugin_import_each_other_without_cycles_in_at_most_6_levels() -> None:
    packages = package_graph(module_graph(sources()))
    assert {"plugin.core", "plugin.app"} <= set(packages)
    found = cycle(packages)
    assert found is None, "import cycle: " + " -> ".join(found or [])
    height = longest_path(packages)
    assert len(height) <= MAX_PACKAGE_LEVELS, " -> ".join(height)


# -- the readers above see every kind of import ------------------------------------------------


def test_the_import_reader_sees_relative_imports_in_functions_and_under_type_checking(
    tmp_path: Path,
) -> None:
    (tmp_path / "plugin" / "core").mkdir(parents=True)
    files = {
        "plugin/__init__.py": "",
        "plugin/core/__init__.py": "",
        "plugin/core/a.py": "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from plugin.core import b\n",
        "plugin/core/b.py": "def f():\n    from . import a\n    import requests.adapters\n",
        "plugin/run.py": "def g():\n    from .core.a import x\n    from integrations import http\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "integrations").mkdir()
    modules = sources(tmp_path)
    graph = module_graph(modules)
    assert graph["plugin.run"] == {"plugin.core.a"}
    found = cycle(graph)
    assert found and len(found) == 3 and set(found) == {"plugin.core.a", "plugin.core.b"}
    assert package_graph(graph)["plugin.run"] == {"plugin.core"}
    assert longest_path(package_graph(graph)) == ["plugin.run", "plugin.core"]
    assert set(import_lines(tmp_path)) == {
        "plugin/core/a.py:1 imports typing",
        "plugin/core/a.py:3 imports plugin.core.b",
        "plugin/core/b.py:2 imports plugin.core.a",
        "plugin/core/b.py:3 imports requests.adapters",
        "plugin/run.py:2 imports plugin.core.a",
        "plugin/run.py:3 imports integrations",
    }


PLATFORM_MODULES = ("integrations.bookkeeping.xero", "integrations.calendars", "integrations.sms")


def test_reading_the_demo_settings_imports_no_platform_connector(tmp_path: Path) -> None:
    """kindly.toml naming the ledger imports neither another connector nor requests."""
    from plugin.app.demo import create_demo_workspace

    create_demo_workspace(
        tmp_path / "demo", tmp_path / "outbox", datetime(2026, 11, 22, tzinfo=UTC)
    )
    code = (
        "import sys; from pathlib import Path; from plugin.app.wiring import load_settings; "
        f"load_settings(Path({str(tmp_path / 'demo' / 'kindly.toml')!r})); "
        "print(sorted(m for m in sys.modules if m == 'requests' or "
        f"m.startswith({PLATFORM_MODULES!r})))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout
