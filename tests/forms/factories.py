"""Small builders for form tests: markdown-table XLSForms written inline, as pyxform's own tests do."""

from __future__ import annotations

from app.blobs import FilesystemBlobStore
from forms import service

SIMPLE = """
| survey |
| | type | name | label |
| | geopoint | gps | Where |
| | text | remark | Remark |
| settings |
| | form_id | version | name |
| | {form_id} | {version} | {form_id} |
"""


def simple_form(form_id: str = "simple", version: str = "1", extra: str = "") -> bytes:
    """A two-question form; ``extra`` adds a survey row (e.g. another question) to change the content."""
    md = SIMPLE.format(form_id=form_id, version=version)
    if extra:
        md = md.replace("| | text | remark | Remark |", f"| | text | remark | Remark |\n{extra}")
    return md.encode()


def add(session, settings, content: bytes, *, filename: str = "form.md", kind: str | None = None, media=()):  # noqa: ANN001, ANN201
    return service.add_form(session, blobs=FilesystemBlobStore(settings.media_path), settings=settings, actor=None,
                            content=content, filename=filename, kind=kind, media=media)
