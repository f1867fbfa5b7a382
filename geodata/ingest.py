"""Map each new submission onto a site before it is inserted (``SubmissionInserting``: the row is
written once), then restage the site once it is stored (``SubmissionStored``).

Never raises for bad field data: a missing or strange location is flagged on the submission
(``site_flag``) and listed by ``GET /api/v1/sites/unmapped`` for review.
"""

from __future__ import annotations

from sqlmodel import Session

from app.events import SubmissionInserting, SubmissionStored
from geodata import placement, queries, stages
from sync.models import Submission
from sync.review import SubmissionReviewed


def on_submission_inserting(event: SubmissionInserting) -> None:
    """The ``SubmissionInserting`` subscriber: the row's ``site_*`` columns from its location."""
    values = event.values
    p = placement.placement_of(event.session, lon=values.get("lon"), lat=values.get("lat"), data=values.get("data"),
                               form=event.form, settings=event.settings, version=event.version)
    values.update(site_id=p.site_id, site_distance_m=p.distance_m, site_match=p.match, site_flag=p.flag)


def on_submission_stored(event: SubmissionStored) -> None:
    """The ``SubmissionStored`` subscriber (registered by ``geodata.capability``)."""
    restage_after(event.session, event.submission)


def on_submission_reviewed(event: SubmissionReviewed) -> None:
    """A visit rejected (or no longer rejected) leaves (or rejoins) the evidence of its site's stage:
    restage that site now rather than at its next visit (``SubmissionReviewed`` subscriber)."""
    if event.submission.site_id is None or "rejected" not in (event.from_state, event.to_state):
        return
    event.session.flush()  # restaging reads the review state from the database
    stages.recompute_stages(event.session, [event.submission.site_id])


def restage_after(session: Session, submission: Submission) -> None:
    """Recompute the stage of the site a new submission was placed on (``on_submission_inserting``) and,
    for an edit, of the site the replaced version was on."""
    affected = {submission.site_id} if submission.site_id else set()
    if submission.deprecated_id:
        # an edit: the replaced version's site loses this visit
        previous = queries.site_id_of_instance(session, submission.deprecated_id)
        if previous:
            affected.add(previous)
    if affected:  # restaging reads the submissions: they must be flushed first
        session.flush()
        stages.recompute_stages(session, sorted(affected))
