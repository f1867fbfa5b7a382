"""Finding the form and form version a submission names (``xml_form_id``, ``version``).

The ids found are remembered per process, across requests, per engine (two apps or two databases in
one process keep apart). Ids only steer the lookup (a primary-key read instead of a search). A submission
after a form's first gets read-only copies of the form and its version (``app.snapshots``), checked with
one raw read against the rows, so a form's state (closed: refused at once), its published version and
settings are never stale, whichever process changed them, and no invalidation is needed. A stored form
version never changes (versions are immutable; a new version is a new row and a new key), so a remembered
id stays right; a deleted or replaced row fails the check and is looked up again.
"""

from __future__ import annotations

from sqlmodel import Session

from app.db import RowIds
from app.snapshots import RowPairSnapshots, RowSnapshots
from forms.errors import FormNotFound, FormVersionNotFound
from forms.models import Form, FormVersion
from sync import queries
from sync.queries import NO_XFORM

__all__ = ["get_form", "get_version", "remembered_form_and_version"]

#: {("form", xml_form_id) | ("version", form id, version): row id} per process and engine (``RowIds``).
_IDS = RowIds()


def get_form(session: Session, xml_form_id: str) -> Form:
    """The form with this ``xml_form_id``; 404 ``form.not_found``."""
    ids = _IDS.of(session)
    form_id = ids.get(("form", xml_form_id))
    form = session.get(Form, form_id) if form_id is not None else None
    if form is None or form.xml_form_id != xml_form_id:
        form = queries.form_by_xml_id(session, xml_form_id)
        if form is None:
            raise FormNotFound(f"form {xml_form_id!r} not found on this server",
                               details={"form": xml_form_id})
        ids[("form", xml_form_id)] = form.id
    return form


def get_version(session: Session, form: Form, version: str | None) -> FormVersion:
    """``version`` of ``form`` (None: the published version); 404 ``form.version_not_found``.
    The XForm text stays unloaded (ingest does not need it)."""
    row = None
    if version is None:
        if form.published_version_id:
            row = session.get(FormVersion, form.published_version_id, options=NO_XFORM)
    else:
        ids = _IDS.of(session)
        key = ("version", form.id, version)
        version_id = ids.get(key)
        row = session.get(FormVersion, version_id, options=NO_XFORM) if version_id is not None else None
        if row is None or row.form_id != form.id or row.version != version:
            row = queries.version_of(session, form.id, version)
            if row is not None:
                ids[key] = row.id
    if row is None:
        raise FormVersionNotFound(f"form {form.xml_form_id!r} has no version {version!r} on this server"
                                  if version is not None else f"form {form.xml_form_id!r} has no published version",
                                  details={"form": form.xml_form_id, "version": version})
    return row


def remembered_form_and_version(session: Session, xml_form_id: str, version: str | None
                                ) -> tuple[Form, FormVersion] | None:
    """Read-only copies of the form and its ``version`` (``app.snapshots``: one raw read for both, issue 13)
    when both ids are remembered (every submission after a form's first) and the rows still match
    what was asked; else None, and the caller takes the two steps (``get_form``, then ``get_version``)
    with their errors. The form's copy is checked against every column of its row (a closed form is
    refused at once); a version's only against its identity (versions never change). Callers only read
    the copies; the version's XForm text is not on its copy."""
    if version is None:
        return None
    ids = _IDS.of(session)
    form_id = ids.get(("form", xml_form_id))
    version_id = ids.get(("version", form_id, version)) if form_id is not None else None
    if version_id is None:
        return None
    pair = _VERSION_AND_FORM.get(session, version_id)
    if pair is None:
        return None
    found, form = pair
    if form.xml_form_id != xml_form_id or found.form_id != form.id or found.version != version:
        return None
    return form, found


#: Read-only copies of forms (checked against every column) and of versions (checked against their
#: identity only: a version never changes; a new version is a new row), per process and engine.
_VERSION_AND_FORM = RowPairSnapshots(
    RowSnapshots(FormVersion, stamp=("id", "form_id", "version"), exclude=("xform_xml",), max_entries=500),
    "form_id", RowSnapshots(Form))
