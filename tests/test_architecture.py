"""The layers can be read from the imports (docs/architecture.md, "Layers and capabilities").

* the layers, built from the capability list itself: composition > the capabilities, last listed on
  top (cases > geodata > sync > forms) > kernel (every other module of app/); checked with grimp, the
  import graph library behind import-linter, so a new capability needs no contract to be written;
* no import cycle between project modules;
* imports sit at module level; a function-level import of a project module carries a one-line
  ``# reason: ...`` on the same line, except in the files of ``STILL_TO_CLEAN`` (phase B of issue 10
  empties it: the counts there may only go down, and the test says when to lower them);
* no ``except ImportError`` pretending a package is optional;
* the composition's capability list and the migration packages agree.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp

from app import db
from app.composition import CAPABILITIES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = db.PACKAGES
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


def kernel_modules() -> set[str]:
    """Every module of app/ but the composition root."""
    modules = {f"app.{p.stem}" for p in (ROOT / "app").glob("*.py") if p.stem != "__init__"}
    modules |= {f"app.{p.name}" for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()}
    return modules - COMPOSITION


def layers() -> list[grimp.Layer]:
    """Highest first: the composition root, the capabilities from the last listed down, the kernel."""
    return [grimp.Layer(*sorted(COMPOSITION), independent=False),
            *(grimp.Layer(c.name) for c in reversed(CAPABILITIES)),
            grimp.Layer(*sorted(kernel_modules()), independent=False)]


def illegal_imports(graph: grimp.ImportGraph) -> list[str]:
    found = graph.find_illegal_dependencies_for_layers(layers=layers())
    return sorted(f"{d.importer} -> {d.imported}: "
                  + "; ".join(" -> ".join([*sorted(r.heads), *r.middle, *sorted(r.tails)]) for r in d.routes)
                  for d in found)


def test_imports_point_down_the_layers() -> None:
    """A capability imports only the kernel and the capabilities listed before it; the kernel imports no
    capability; nothing imports the composition root."""
    assert illegal_imports(grimp.build_graph(*PACKAGES)) == []


def test_the_layer_check_sees_an_import_against_the_layers() -> None:
    """The check itself: forms importing cases (forms must never learn that cases exists), or the kernel
    importing a capability, is reported."""
    graph = grimp.build_graph(*PACKAGES)
    graph.add_import(importer="forms.service", imported="cases.models")
    graph.add_import(importer="app.audit", imported="sync.models")
    found = illegal_imports(graph)
    assert any(line.startswith("forms -> cases") for line in found), found
    assert any("app.audit" in line and "sync" in line for line in found), found


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
    """Every capability has its models and migration branch, and ``app.db`` (which finds the packages with a
    ``capability.py`` on disk) migrates exactly those: a capability left out of the list fails here."""
    names = [c.name for c in CAPABILITIES]
    assert len(set(names)) == len(names)
    assert sorted(db.PACKAGES) == sorted(["app", *names])  # each once: a branch found twice is loaded twice
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
