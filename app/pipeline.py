"""What happens to a submission after sync stored it: map it onto a site (geodata), then let
case management act on it (cases). Both steps are idempotent and never refuse the submission:
data collected at cost in the field is never dropped; problems are flagged for review.

``sync.service`` calls ``after_submission_stored`` in the same transaction as the insert, for
new submissions and for edits (a new current version of a record).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

if TYPE_CHECKING:
    from app.auth import Actor
    from app.settings import Settings
    from forms.models import Form, FormVersion
    from sync.models import Submission


def after_submission_stored(
    session: Session,
    *,
    submission: Submission,
    form: Form,
    version: FormVersion,
    actor: Actor | None,
    settings: Settings,
) -> None:
    from cases.ingest import on_submission as cases_on_submission
    from geodata.ingest import on_submission as geodata_on_submission

    geodata_on_submission(session, submission=submission, form=form, version=version, settings=settings)
    cases_on_submission(session, submission=submission, form=form, version=version, actor=actor, settings=settings)


#: Form media generated per request, for files whose content depends on who asks (e.g. the
#: open cases of the caller's organisation). filename -> "module:function"; the function is
#: ``f(session, actor, form, version) -> tuple[bytes, str] | None`` ((content, media type), or
#: None when the caller may not have the file). Listed in the manifest only when not None.
DYNAMIC_FORM_MEDIA: dict[str, str] = {
    "cases.csv": "cases.media:case_list_csv",
}


def dynamic_form_media(session: Session, *, actor: Actor, form: Form, version: FormVersion) -> dict[str, tuple[bytes, str]]:
    """The per-caller media files of ``version`` (only names its XForm references)."""
    import importlib

    files: dict[str, tuple[bytes, str]] = {}
    for filename, target in DYNAMIC_FORM_MEDIA.items():
        if filename not in (version.media_names or []):
            continue
        module_name, func_name = target.split(":")
        result = getattr(importlib.import_module(module_name), func_name)(session, actor, form, version)
        if result is not None:
            files[filename] = result
    return files
