"""Map each stored submission onto a site (called by ``app.pipeline``), then restage the site.

Never raises for bad field data: a missing or strange location is flagged on the submission
(``site_flag``) and listed by ``GET /api/v1/sites/unmapped`` for review.
"""

from __future__ import annotations

import logging

from sqlmodel import Session, select

log = logging.getLogger("asmfield.geodata")


def on_submission(session: Session, *, submission, form, version, settings) -> None:  # noqa: ANN001
    """Set ``submission.site_*`` from its location and recompute the affected sites' stages."""
    from geodata import service
    from sync.models import Submission

    affected = service.map_submission(session, submission=submission, form=form, settings=settings)
    if submission.deprecated_id:
        # an edit: the replaced version's site loses this visit
        previous = session.exec(select(Submission.site_id).where(Submission.instance_id == submission.deprecated_id)).first()
        if previous:
            affected.add(previous)
    session.add(submission)
    if affected:  # restaging reads the submissions: they must be flushed first
        session.flush()
        service.recompute_stages(session, sorted(affected))
