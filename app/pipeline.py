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
