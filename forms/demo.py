"""Demo data of the forms capability for ``asmfield init --demo``: every bundled form.

Bundled forms are the files in ``forms/bundled/`` (``*.md`` markdown-table XLSForms, ``*.xlsx``
or ``*.xml``); ``forms/bundled/forms.json`` gives each form id its kind and initial settings.
Installing is idempotent: the same file gives the same version (see ``forms.service.add_form``).
Generated media files the forms reference that nobody has produced yet (registered by other
capabilities with a placeholder, ``Hooks.placeholders``: e.g. the site list before any site exists)
get that empty but valid content, so ODK Collect can download the form at once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.blobs import BlobStore
from app.events import Hooks
from app.settings import Settings
from forms import service

BUNDLED = Path(__file__).resolve().parent / "bundled"
SOURCES = ("*.md", "*.xlsx", "*.xml")


def bundled_files() -> list[Path]:
    """The bundled form sources (README.md is documentation, not a form)."""
    files = [p for pattern in SOURCES for p in BUNDLED.glob(pattern) if p.name.lower() != "readme.md"]
    return sorted(files)


def bundled_config() -> dict[str, dict[str, Any]]:
    path = BUNDLED / "forms.json"
    return json.loads(path.read_text()) if path.exists() else {}


def install_bundled(session: Session, *, blobs: BlobStore, settings: Settings,
                    hooks: Hooks) -> list[dict[str, Any]]:
    """Install (or confirm) every bundled form; returns one line of facts per form."""
    config = bundled_config()
    installed = []
    for path in bundled_files():
        options = config.get(path.stem, {})
        result = service.add_form(session, blobs=blobs, settings=settings, actor=None, content=path.read_bytes(),
                                  filename=path.name, kind=options.get("kind"), form_settings=options.get("settings"),
                                  generators=hooks.generated_media)
        for filename, (content, media_type) in hooks.placeholders().items():
            service.ensure_media(session, blobs=blobs, version=result.version, filename=filename, content=content,
                                 media_type=media_type, generated_from="placeholder")
        installed.append({"xml_form_id": result.form.xml_form_id, "version": result.version.version,
                          "kind": result.form.kind, "created": result.created})
    return installed


def seed(session: Session, settings: Settings, hooks: Hooks, blobs: BlobStore) -> dict:
    """Load demo data; idempotent. Returns a short summary for the console."""
    return {"installed": install_bundled(session, blobs=blobs, settings=settings, hooks=hooks)}
