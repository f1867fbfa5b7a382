"""Tests read like the code: shared builders live in factories modules (tests/factories.py,
tests/<pkg>/factories.py) or in conftest fixtures, never in another test module."""

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def imported_modules(source: str, package: str) -> list[str]:
    """Every module ``source`` (a module of ``package``) imports, and every ``from X import name`` as X.name."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            names += [base, *(f"{base}.{alias.name}" for alias in node.names)]
    return names


def imports_of_test_modules(path: Path) -> list[str]:
    package = ".".join(("tests", *path.relative_to(TESTS).parent.parts))
    return [name for name in imported_modules(path.read_text(), package) if is_test_module(name)]


def is_test_module(name: str) -> bool:
    return name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")


def test_no_test_module_imports_another_test_module():
    offenders = [f"{path.relative_to(TESTS.parent)}: {name}"
                 for path in sorted(TESTS.rglob("*.py")) for name in imports_of_test_modules(path)]
    assert offenders == [], "move shared builders to tests/factories.py or tests/<pkg>/factories.py"


def test_the_check_sees_absolute_relative_and_module_imports():
    source = ("from tests.cases.test_kpi import withdraw\nfrom .test_routes import go\nfrom . import test_cli\n"
              "import tests.app.test_web\nfrom tests.cases.factories import go\nfrom tests.conftest import PASSWORD\n")
    found = [name for name in imported_modules(source, "tests.cases") if is_test_module(name)]
    assert set(found) == {"tests.cases.test_kpi", "tests.cases.test_routes", "tests.cases.test_cli",
                          "tests.app.test_web"}
