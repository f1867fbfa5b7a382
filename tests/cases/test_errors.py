"""The refusals of the cases capability (``cases.errors``): one class per refusal, each with its own
stable code, and raise sites that name the class instead of spelling a code (issue 10)."""

from pathlib import Path

from app.errors import DomainError
from cases import errors

CASES = Path(errors.__file__).parent


def test_every_refusal_has_its_own_stable_code():
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, DomainError) and c.__module__ == errors.__name__]
    codes = [c.code for c in classes]
    assert len(classes) >= 20 and len(set(codes)) == len(codes)
    assert all(code.startswith(("case.", "kpi.")) for code in codes)
    assert errors.InvalidTransition("x").status_code == 409 and errors.CaseNotFound("x").status_code == 404


def test_raise_sites_use_the_catalogue():
    spelled = [f"{path.name}:{n}" for path in sorted(CASES.glob("*.py")) if path.name != "errors.py"
               for n, line in enumerate(path.read_text().splitlines(), 1) if 'code="' in line]
    assert spelled == []
