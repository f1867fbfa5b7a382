"""Keep each package's French catalogue in step with its pages.

    .venv/bin/python scripts/i18n.py update cases      # add new strings of cases/ to cases/translations/fr/...
    .venv/bin/python scripts/i18n.py update cases --file queues.po   # ... into that file of the package
    .venv/bin/python scripts/i18n.py update            # every package
    .venv/bin/python scripts/i18n.py missing           # strings without a French translation (exit 1 if any)

A package's French catalogue may be split in several ``.po`` files (one per group of pages, so
people working on different pages do not edit the same file); a string is translated when any of
them translates it. Strings are found in Python code (``_("…")``, ``gettext``, ``ngettext``, ``N_``) and in templates
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


def catalogue_dir(package: str, language: str = "fr") -> Path:
    base = ROOT / package / "web" if package == "app" else ROOT / package
    return base / "translations" / language / "LC_MESSAGES"


def catalogue_path(package: str, language: str = "fr", file: str = "messages.po") -> Path:
    return catalogue_dir(package, language) / file


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


def _key(message_id: object) -> str:
    return message_id if isinstance(message_id, str) else message_id[0]  # type: ignore[index]


def known(package: str) -> dict[str, object]:
    """message id -> its French (from any of the package's files; untranslated ones map to '')."""
    out: dict[str, object] = {}
    for path in sorted(catalogue_dir(package).glob("*.po")) if catalogue_dir(package).is_dir() else []:
        for message in load(path):
            if message.id and not message.fuzzy:
                if message.string and (not isinstance(message.string, tuple) or all(message.string)):
                    out[_key(message.id)] = message.string
                else:
                    out.setdefault(_key(message.id), "")
    return out


def update(package: str, file: str = "messages.po") -> tuple[int, int]:
    """Add the package's new strings to ``file`` (strings no file of the package has yet); drop from
    ``file`` the strings the package no longer uses."""
    template = extract(package)
    used = {_key(m.id) for m in template if m.id}
    path = catalogue_path(package, file=file)
    elsewhere: set[str] = set()
    for other in sorted(catalogue_dir(package).glob("*.po")) if catalogue_dir(package).is_dir() else []:
        if other.name != file:
            elsewhere |= {_key(m.id) for m in load(other) if m.id}
    catalog = load(path)
    for message in list(catalog):
        if message.id and _key(message.id) not in used:
            catalog.delete(message.id, context=message.context)
    added = 0
    for message in template:
        if message.id and _key(message.id) not in elsewhere and catalog.get(message.id, context=message.context) is None:
            catalog.add(message.id, None, context=message.context)
            added += 1
    catalog.fuzzy = False
    if not len(catalog) and not path.exists():
        return 0, 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        write_po(handle, catalog, width=110, omit_header=False, sort_output=False, no_location=True)
    return len(catalog), len(missing(package))


def missing(package: str) -> list[str]:
    """Message ids used by ``package`` that none of its French catalogue files translates."""
    translated = {k for k, v in known(package).items() if v}
    return [_key(m.id) for m in extract(package) if m.id and _key(m.id) not in translated]


def main(argv: list[str]) -> int:
    command, *packages = argv or ["missing"]
    file = "messages.po"
    if "--file" in packages:
        at = packages.index("--file")
        file = packages[at + 1]
        del packages[at:at + 2]
    packages = packages or list(PACKAGES)
    if command == "update":
        for package in packages:
            total, todo = update(package, file)
            if total:
                print(f"{catalogue_path(package, file=file).relative_to(ROOT)}: {total} strings; "
                      f"{todo} of the package's strings to translate")
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
