"""The closure criteria (§3.2, §3.6): two good follow-ups far enough apart move a monitored case
to ``withdrawn_pending_closure``; the closure then awaits a second person's approval."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session

from app.identity import Actor
from app.timeutil import as_utc
from cases import lifecycle, queries, transitions
from cases.models import CaseEvent, CaseFollowup, ChildCase

#: Two good follow-ups at least this many days apart meet the closure criteria (§3.2, §3.6).
WITHDRAWAL_MIN_DAYS = 90


def withdrawal_date(followups: list[CaseFollowup], *, since: datetime | None = None,
                    min_days: int = WITHDRAWAL_MIN_DAYS) -> date | None:
    """Date of the second qualifying follow-up: within the latest run of consecutive good
    observations (found, no hazardous work, in school or training), the first one at least
    ``min_days`` after the run began. None when the criteria are not met.

    :param since: only follow-ups recorded after this moment count (after a relapse).
    """
    seen = [f for f in followups if f.child_found and (since is None or as_utc(f.created_at) >= since)]
    seen.sort(key=lambda f: (f.observed_on, f.id or 0))
    run: list[CaseFollowup] = []
    for f in seen:
        if f.in_hazardous_work is False and f.in_school_or_training is True:
            run.append(f)
        else:
            run = []
    if not run:
        return None
    start = run[0].observed_on
    for f in run[1:]:
        if (f.observed_on - start).days >= min_days:
            return f.observed_on
    return None


def evaluate_closure_criteria(session: Session, *, case: ChildCase, requested_by: Actor | None = None,
                              submission_id: int | None = None) -> CaseEvent | None:
    """monitoring → withdrawn_pending_closure (system) when the criteria are met; the closure then
    awaits a coordinator other than the caseworker who recorded the qualifying follow-up."""
    if case.status != lifecycle.MONITORING:
        return None
    since = _last_resume_date(session, case)
    withdrawn_on = withdrawal_date(queries.followups(session, case.id), since=since)
    if withdrawn_on is None:
        return None
    event = transitions.transition(session, actor=None, case=case, action="criteria_met", submission_id=submission_id,
                                   details={"withdrawn_on": withdrawn_on.isoformat()})
    if case.first_withdrawn_on is None:
        case.first_withdrawn_on = withdrawn_on
    case.pending_request, case.pending_reason = "closure", "withdrawn_and_supported"
    case.requested_by_user_id = requested_by.user.id if requested_by else None
    session.add(case)
    return event


def _last_resume_date(session: Session, case: ChildCase) -> datetime | None:
    """After a relapse (or a rejected closure), only follow-ups recorded from then on count."""
    last = None
    for e in queries.events(session, case.id):
        if e.action in ("resume_services", "reject_closure"):
            last = as_utc(e.at)
    return last
