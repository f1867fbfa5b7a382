"""What happens to a submission after sync stored it: map it onto a site (geodata), then let
case management act on it (cases). Both steps are idempotent and never refuse the submission:
data collected at cost in the field is never dropped; problems are flagged for review.

``sync.service`` calls ``after_submission_stored`` in the same transaction as the insert, for
new submissions and for edits (a new current version of a record). It also asks here, before
storing anything, who may edit a case-form record, and the read routes ask whether a submission
is case data (which only the case routes serve).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session, select

from cases import ingest as cases_ingest
from cases.models import CaseSubmission
from sync.models import Submission

if TYPE_CHECKING:
    from app.identity import Actor
    from app.settings import Settings
    from forms.models import Form, FormVersion


def after_submission_stored(
    session: Session,
    *,
    submission: Submission,
    form: Form,
    version: FormVersion,
    actor: Actor | None,
    settings: Settings,
) -> None:
    from geodata.ingest import on_submission as geodata_on_submission

    geodata_on_submission(session, submission=submission, form=form, version=version, settings=settings)
    cases_ingest.on_submission(session, submission=submission, form=form, version=version, actor=actor,
                               settings=settings)


def may_edit_case_record(session: Session, *, actor: Actor, submission: Submission) -> bool:
    """May ``actor`` replace this case-form submission by an edit? (the cases rule)"""
    return cases_ingest.may_edit(session, actor=actor, submission=submission)


def holds_case_data(session: Session, *, form: Form, submission: Submission | None = None) -> bool:
    """Did case management take in ``submission`` (or, without one, any submission of ``form``)?
    A sticky fact of the data itself, whatever the form's kind says now."""
    query = select(CaseSubmission.id)
    if submission is not None:
        query = query.where(CaseSubmission.submission_id == submission.id)
    else:
        query = query.join(Submission, Submission.id == CaseSubmission.submission_id).where(
            Submission.form_id == form.id)
    return session.exec(query.limit(1)).first() is not None


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
