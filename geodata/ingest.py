"""Map each stored submission onto a site (on ``SubmissionStored``), then restage the site.

Never raises for bad field data: a missing or strange location is flagged on the submission
(``site_flag``) and listed by ``GET /api/v1/sites/unmapped`` for review.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from app.events import SubmissionStored
from app.settings import Settings
from forms.models import Form, FormVersion
from geodata import placement, queries, stages
from sync.models import Submission
from sync.review import SubmissionReviewed

log = logging.getLogger("asmfield.geodata")


def on_submission_stored(event: SubmissionStored) -> None:
    """The ``SubmissionStored`` subscriber (registered by ``geodata.capability``)."""
    on_submission(event.session, submission=event.submission, form=event.form, version=event.version,
                  settings=event.settings)


def on_submission_reviewed(event: SubmissionReviewed) -> None:
    """A visit rejected (or no longer rejected) leaves (or rejoins) the evidence of its site's stage:
    restage that site now rather than at its next visit (``SubmissionReviewed`` subscriber)."""
    if event.submission.site_id is None or "rejected" not in (event.from_state, event.to_state):
        return
    event.session.flush()  # restaging reads the review state from the database
    stages.recompute_stages(event.session, [event.submission.site_id])


def on_submission(session: Session, *, submission: Submission, form: Form, version: FormVersion,
                  settings: Settings) -> None:
    """Set ``submission.site_*`` from its location and recompute the affected sites' stages."""
    affected = placement.map_submission(session, submission=submission, form=form, settings=settings)
    if submission.deprecated_id:
        # an edit: the replaced version's site loses this visit
        previous = queries.site_id_of_instance(session, submission.deprecated_id)
        if previous:
            affected.add(previous)
    session.add(submission)
    if affected:  # restaging reads the submissions: they must be flushed first
        session.flush()
        stages.recompute_stages(session, sorted(affected))
