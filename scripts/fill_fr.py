"""Fill French translations into a package's catalogue from a JSON file {"msgid": "msgstr"}.

    .venv/bin/python scripts/fill_fr.py cases /tmp/cases-fr.json [queues.po]

Handy after ``scripts/i18n.py update``: write the missing strings' French in one file, apply it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from babel.messages.pofile import write_po  # noqa: E402
from i18n import catalogue_path, load  # noqa: E402


def main(package: str, source: str, file: str = "messages.po") -> int:
    path = catalogue_path(package, file=file)
    catalog = load(path)
    wanted = json.loads(Path(source).read_text(encoding="utf-8"))
    unknown = []
    for msgid, text in wanted.items():
        message = catalog.get(msgid)
        if message is None:
            unknown.append(msgid)
            continue
        message.string = tuple(text) if isinstance(text, list) else text
        message.flags.discard("fuzzy")
    with path.open("wb") as handle:
        write_po(handle, catalog, width=110, no_location=True)
    for msgid in unknown:
        print(f"not in the catalogue (run scripts/i18n.py update {package} first): {msgid!r}")
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
