"""Builders for the form tests: markdown-table XLSForms written inline (as pyxform's own tests do), added
through forms.service or uploaded through the API."""

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
    """Add a form through forms.service.add_form, as an anonymous actor."""
    return service.add_form(session, blobs=FilesystemBlobStore(settings.media_path), settings=settings, actor=None,
                            content=content, filename=filename, kind=kind, media=media)


def upload(client, person, content: bytes, *, filename: str = "form.md", kind: str | None = None, media=()):  # noqa: ANN001, ANN201
    """Upload a form (and its media) through the API as ``person``; returns the response."""
    files = [("file", (filename, content, "application/octet-stream"))]
    files += [("media", (name, body, "text/csv")) for name, body in media]
    return client.post("/api/v1/forms", files=files, data={"kind": kind} if kind else {}, headers=person.basic)

