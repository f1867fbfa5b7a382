"""The layers can be read from the imports (docs/architecture.md, "Layers and capabilities").

* the import-linter contract in pyproject.toml: composition > cases > geodata > sync > forms > kernel;
* no import cycle between project modules;
* imports sit at module level; a function-level import of a project module carries a one-line
  ``# reason: ...`` on the same line, except in the files of ``STILL_TO_CLEAN`` (phase B of issue 10
  empties it: the counts there may only go down, and the test says when to lower them);
* no ``except ImportError`` pretending a package is optional;
* the composition's capability list and the migration packages agree.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from app import db
from app.composition import CAPABILITIES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "forms", "sync", "geodata", "cases")
COMPOSITION = {"app.main", "app.cli", "app.demo", "app.composition"}

#: file -> function-level imports of project modules without a ``# reason:``, still to move (phase B).
STILL_TO_CLEAN: dict[str, int] = {}
#: Import cycles still to break (phase B), as sorted module lists.
CYCLES_TO_BREAK: list[list[str]] = []


def _source_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                  if "migrations" not in p.parts and "alembic" not in p.parts)


def function_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every import of a project module inside a function body of ``path``."""
    lines = path.read_text().splitlines()
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.ImportFrom):
                names = [inner.module or ""] if inner.level == 0 else [PACKAGES[0]]  # relative = ours
            elif isinstance(inner, ast.Import):
                names = [a.name for a in inner.names]
            else:
                continue
            if any(name.split(".")[0] in PACKAGES for name in names):
                found.add((inner.lineno, lines[inner.lineno - 1].strip()))
    return sorted(found)


def test_the_layers_contract_holds() -> None:
    """``lint-imports`` (import-linter, configured in pyproject.toml) finds no import against the layers."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_the_kernel_layer_lists_every_kernel_module() -> None:
    """A new module in app/ is in the kernel layer of the contract (else the contract would not see it)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    layers = config["tool"]["importlinter"]["contracts"][0]["layers"]
    kernel = {name.strip() for name in layers[-1].split(":")}
    composition = {name.strip() for name in layers[0].split(":")}
    modules = {f"app.{p.stem}" for p in (ROOT / "app").glob("*.py") if p.stem != "__init__"}
    modules |= {f"app.{p.name}" for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()}
    assert composition == COMPOSITION
    assert kernel == modules - COMPOSITION


def test_no_import_cycles_between_project_modules() -> None:
    graph = grimp.build_graph(*PACKAGES)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in graph.find_modules_directly_imported_by(module):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert sorted(cycles) == sorted(CYCLES_TO_BREAK), "an import cycle appeared or one was broken (update the list)"


def test_function_level_imports_of_project_modules_carry_a_reason() -> None:
    unexplained: dict[str, list[str]] = {}
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        missing = [f"{line}: {text}" for line, text in function_level_imports(path) if "# reason:" not in text]
        if missing:
            unexplained[rel] = missing
    for rel, allowed in STILL_TO_CLEAN.items():
        count = len(unexplained.pop(rel, []))
        assert count <= allowed, f"{rel}: {count} function-level imports, more than the {allowed} still to clean"
        assert count == allowed, f"{rel}: {count} left, lower STILL_TO_CLEAN to {count} (the list only shrinks)"
    assert not unexplained, ("move these imports to module level, or add `# reason: ...` on the same line:\n"
                             + "\n".join(f"{rel}:{line}" for rel, items in unexplained.items() for line in items))


def test_no_package_pretends_another_is_optional() -> None:
    offenders = []
    for path in _source_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Name) and node.type.id in (
                    "ImportError", "ModuleNotFoundError"):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders


def test_the_capability_list_matches_the_migration_packages() -> None:
    """Every capability has its models and migration branch, and ``app.db`` migrates exactly those."""
    names = [c.name for c in CAPABILITIES]
    assert names == ["forms", "sync", "geodata", "cases"]
    assert set(db.PACKAGES) == {"app", *names}
    for capability in CAPABILITIES:
        assert (ROOT / capability.migrations).is_dir(), capability.name
        assert (ROOT / capability.name / "models.py").is_file(), capability.name


def test_the_architecture_check_sees_a_function_level_import(tmp_path: Path) -> None:
    """The AST check itself: it finds an import inside a function and reads its reason."""
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from forms import service  # reason: example\n    import json\n"
                      "    from geodata.models import Site\n")
    found = function_level_imports(sample)
    assert [line for line, _ in found] == [2, 4]
    assert "# reason:" in found[0][1] and "# reason:" not in found[1][1]
