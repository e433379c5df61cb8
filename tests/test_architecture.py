"""The layers stay visible and the arrows point one way (issue 13).

Read from the source with ``ast``, every import counted, function-level and ``TYPE_CHECKING``
ones included: a cycle hidden behind a late import is still a cycle.

    django_msm/  (Django contract and wiring)  →  core/  (domain, no Django)  →  stores/ (adapters)
    ops/ (status, publishing, metrics) sits beside the Django layer and uses core and stores.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "django_msm"
LEAVES = {"django_msm.exceptions", "django_msm.clock"}


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module ``path`` imports (absolute names; relative ones resolved)."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    modules = {_module_name(path, root): path for path in root.rglob("*.py")}
    return {
        name: {m for m in _imports(path, root) if m in modules} for name, path in modules.items()
    }


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _leaf(module: str) -> bool:
    return module in ("django_msm", "django_msm.core") or any(_in(module, leaf) for leaf in LEAVES)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if target == name or _in(name, target):  # a module and its own package's __init__
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def test_there_is_no_import_cycle() -> None:
    assert _cycles(_graph()) == []


def _python_files(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", ["core", "stores"])
def test_core_and_stores_import_nothing_from_django(folder: str) -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(m for m in _imports(path) if _in(m, "django"))
        for path in _python_files(folder)
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_core_imports_only_core_stores_and_the_shared_leaves() -> None:
    allowed = ("django_msm.core", "django_msm.stores")
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            m for m in _imports(path)
            if _in(m, "django_msm") and not _leaf(m) and not any(_in(m, a) for a in allowed)
        )
        for path in _python_files("core")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_stores_know_nodes_but_nothing_else_of_the_core() -> None:
    """Adapters take a ``Node`` (a value object); no policy, health or registry reaches them."""
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            m for m in _imports(path)
            if _in(m, "django_msm") and not _leaf(m) and not _in(m, "django_msm.stores")
            and not _in(m, "django_msm.core.nodes")
        )
        for path in _python_files("stores")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_module_size_budget_holds() -> None:
    """About 300 lines per module (house style); a module past 330 is doing two things."""
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {path: lines for path, lines in sizes.items() if lines > 330} == {}


def test_the_checker_sees_a_cycle_and_a_django_import(tmp_path: Path) -> None:
    """The checks above can fail: a planted late-import cycle and a Django import are found."""
    fake = tmp_path / "django_msm"
    (fake / "core").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "core" / "__init__.py").write_text("")
    (fake / "core" / "a.py").write_text("from . import b\nimport django.conf\n")
    (fake / "core" / "b.py").write_text("def f():\n    from .a import x\n")
    cycle = ["django_msm.core.a", "django_msm.core.b", "django_msm.core.a"]
    assert _cycles(_graph(fake)) == [cycle]
    assert "django.conf" in _imports(fake / "core" / "a.py", fake)
