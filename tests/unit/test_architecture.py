"""The package's shape: import layers (import-linter contracts), no import cycles, no private names imported
across modules, and modules small enough to read."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "finetune_gui"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

MAX_LINES = 450
LONGER_ON_PURPOSE: dict[str, str] = {}  # path relative to the package -> why it may be longer


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package under `root`."""
    found = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = f
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports_of(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in a module, at the top or inside a function,
    except those under `if TYPE_CHECKING:`, which never run. `from pkg import sub` counts as importing the
    submodule when `pkg.sub` is one, else as importing `pkg` itself (its __init__)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, list[str]]] = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in known:
                    out.append((sub, []))
                elif base in known:
                    out.append((base, [a.name]))
    return out


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each one import cycle or more."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(root)
    return {name: {m for m, _ in imports_of(name, path, known) if m != name} for name, path in known.items()}


def test_no_import_cycles_counting_imports_inside_functions_and_package_inits():
    assert import_cycles(import_graph()) == []


def test_the_cycle_finder_sees_a_cycle_through_a_package_init_and_a_function_level_import(tmp_path):
    pkg = tmp_path / "demo"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "models" / "__init__.py").write_text("def build():\n    from demo.models.vision import make\n")
    (pkg / "models" / "vision.py").write_text("from demo.models import build\n\ndef make():\n    pass\n")
    (pkg / "config.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from demo import runs\n")
    (pkg / "runs.py").write_text("from demo.config import *\n")
    assert import_cycles(import_graph(pkg)) == [["demo.models", "demo.models.vision"]]


def test_no_private_name_is_imported_from_another_module():
    known = modules()
    crossing = [
        f"{name} imports {target}.{n}"
        for name, path in known.items()
        for target, names in imports_of(name, path, known)
        for n in names
        if n.startswith("_") and not n.startswith("__") and target != name
    ]
    assert crossing == []


def test_no_module_is_longer_than_a_reader_can_hold():
    long = {
        str(f.relative_to(PACKAGE)): n
        for f in PACKAGE.rglob("*.py")
        if (n := len(f.read_text(encoding="utf-8").splitlines())) > MAX_LINES
        and str(f.relative_to(PACKAGE)) not in LONGER_ON_PURPOSE
    }
    assert long == {}, f"split these modules (or say in LONGER_ON_PURPOSE why not): {long}"


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def package_copy(tmp_path) -> Path:
    """The package and pyproject.toml copied, so a test can break an import without touching the tree."""
    shutil.copytree(PACKAGE, tmp_path / "finetune_gui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_import_contracts_hold(package_copy):
    result = _lint_imports(package_copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, bad_import, broken",
    [
        ("config.py", "from finetune_gui.core.runs import RunDir", "Layers"),  # the cycle this step removed
        ("files.py", "from finetune_gui.config import RunConfig", "Layers"),
        ("core/plan.py", "from PySide6.QtCore import QObject", "without Qt"),
        ("core/training/engine.py", "from finetune_gui.gui.state import AppState", "without Qt"),
    ],
)
def test_an_import_against_the_layers_breaks_a_contract(package_copy, module, bad_import, broken):
    path = package_copy / "finetune_gui" / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n\ndef _late():\n    {bad_import}\n", encoding="utf-8")
    result = _lint_imports(package_copy)
    assert result.returncode != 0
    broken_lines = [line for line in result.stdout.splitlines() if line.endswith(" BROKEN")]
    assert any(broken in line for line in broken_lines), result.stdout
