"""Autogenerate an Alembic revision for one package's branch.

    .venv/bin/python scripts/new_migration.py forms "add form media"

The first revision of a package starts its branch (label = package name) and depends on the
heads of the packages it needs (``DEPENDS`` below). It runs against a scratch SQLite
database upgraded to the current heads, so only the difference is generated. Review the file.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alembic import command  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402

from app.db import ROOT, alembic_config, make_engine, migrate  # noqa: E402
from app.settings import Settings  # noqa: E402

DEPENDS = {"app": [], "forms": ["app"], "geodata": ["app"], "sync": ["forms", "geodata"], "cases": ["sync"]}


def main(package: str, message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), secret_key="x" * 32)
        engine = make_engine(settings)
        migrate(engine)
        cfg = alembic_config(engine)
        cfg.attributes["only_package"] = package
        script = ScriptDirectory.from_config(cfg)
        heads = {script.get_revision(h).branch_labels and next(iter(script.get_revision(h).branch_labels)): h
                 for h in script.get_heads()}
        version_path = str(ROOT / package / "migrations" / "versions")
        if package in heads:
            command.revision(cfg, message=message, autogenerate=True, head=f"{package}@head", version_path=version_path)
        else:
            depends = [heads[d] for d in DEPENDS.get(package, []) if d in heads]
            command.revision(cfg, message=message, autogenerate=True, head="base", branch_label=package,
                             version_path=version_path, depends_on=depends or None, rev_id=f"{package}_0001")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
