"""Keep each package's French catalogue in step with its pages.

    .venv/bin/python scripts/i18n.py update cases      # add new strings of cases/ to cases/translations/fr/...
    .venv/bin/python scripts/i18n.py update            # every package
    .venv/bin/python scripts/i18n.py missing           # strings without a French translation (exit 1 if any)

Strings are found in Python code (``_("…")``, ``gettext``, ``ngettext``, ``N_``) and in templates
(``{{ _("…") }}``, ``{% trans %}``). New strings are added with an empty ``msgstr`` for a person
to translate; strings no longer used are dropped; existing translations are kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db import PACKAGES  # noqa: E402

KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}
METHODS = [("**/templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n", "trimmed": "true"}}


def catalogue_path(package: str, language: str = "fr") -> Path:
    base = ROOT / package / "web" if package == "app" else ROOT / package
    return base / "translations" / language / "LC_MESSAGES" / "messages.po"


def extract(package: str) -> Catalog:
    catalog = Catalog(locale="fr", project="asmfield", charset="utf-8")
    source = ROOT / package
    for filename, lineno, message, comments, context in extract_from_dir(
            str(source), METHODS, OPTIONS, keywords=KEYWORDS, strip_comment_tags=True):
        if "migrations" in filename:
            continue
        catalog.add(message, None, [(f"{package}/{filename}", lineno)], auto_comments=comments, context=context)
    return catalog


def load(path: Path) -> Catalog:
    if not path.exists():
        return Catalog(locale="fr", project="asmfield", charset="utf-8")
    with path.open("rb") as handle:
        return read_po(handle, locale="fr")


def update(package: str) -> tuple[int, int]:
    template = extract(package)
    path = catalogue_path(package)
    catalog = load(path)
    catalog.update(template, no_fuzzy_matching=True, update_header_comment=False)
    catalog.obsolete.clear()
    catalog.fuzzy = False
    if not len(catalog) and not path.exists():
        return 0, 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=110, omit_header=False, sort_output=False, no_location=True)
    return len(catalog), len(missing(package))


def missing(package: str) -> list[str]:
    """Message ids used by ``package`` that its French catalogue does not translate."""
    catalog = load(catalogue_path(package))
    out = []
    for message in extract(package):
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        text = found.string if found is not None else None
        if not text or (isinstance(text, tuple) and not all(text)) or (found is not None and found.fuzzy):
            out.append(message.id if isinstance(message.id, str) else message.id[0])
    return out


def main(argv: list[str]) -> int:
    command, *packages = argv or ["missing"]
    packages = packages or list(PACKAGES)
    if command == "update":
        for package in packages:
            total, todo = update(package)
            if total:
                print(f"{catalogue_path(package).relative_to(ROOT)}: {total} strings, {todo} to translate")
        return 0
    if command == "missing":
        bad = {package: missing(package) for package in packages}
        for package, ids in bad.items():
            for message in ids:
                print(f"{package}: {message!r}")
        return 1 if any(bad.values()) else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
