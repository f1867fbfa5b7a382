"""The SQL of the reports capability: aggregates only (GROUP BY in the database), never every row.

The red flags are read from the answers of site-visit submissions (``Submission.data``, a JSON
column) with SQLAlchemy's JSON accessors, which compile to ``JSON_EXTRACT`` on SQLite and ``->>``
on PostgreSQL; a select-multiple answer is a JSON list, so "none" reads as ``["none"]`` on both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import String, and_, case, cast, func, or_
from sqlmodel import Session, col, select

from app.models import Device, User
from forms.models import CASE_FORM_KINDS, Form, FormKind, FormVersion
from geodata.models import Site
from geodata.queries import MAPPABLE
from sync.models import Submission

#: A select-multiple answer that reports nothing.
NOTHING = ('["none"]', "[]", "")


def visit_forms(session: Session) -> list[tuple[int, str, int | None]]:
    """(id, xml_form_id, published version id) of every site-visit form."""
    return [tuple(r) for r in session.exec(select(Form.id, Form.xml_form_id, Form.published_version_id)
                                           .where(Form.kind == FormKind.site_visit).order_by(col(Form.id)))]


def field_paths(session: Session, version_id: int) -> dict[str, str]:
    """Field name -> its path in ``Submission.data`` (fields outside repeats) for one form version."""
    fields = session.exec(select(FormVersion.fields).where(FormVersion.id == version_id)).first() or []
    return {f["name"]: f["path"] for f in fields
            if f.get("kind") == "field" and not f.get("repeat") and f.get("name") and f.get("path")}


def case_form_ids(session: Session) -> list[int]:
    return list(session.exec(select(Form.id).where(col(Form.kind).in_(CASE_FORM_KINDS))))


def _visit_month(path: str | None):  # noqa: ANN202 (a SQL expression)
    """``YYYY-MM`` of a visit: its visit date answer, else the day the server received it."""
    received = func.substr(cast(Submission.received_at, String), 1, 7)
    if path is None:
        return received
    return func.coalesce(func.substr(Submission.data[path].as_string(), 1, 7), received)


def _reported(path: str | None):  # noqa: ANN202
    """A select-multiple answer naming anything but "none"."""
    if path is None:
        return None
    value = Submission.data[path].as_string()
    return and_(value.is_not(None), value.not_in(NOTHING))


def _positive(*paths: str | None):  # noqa: ANN202
    """The sum of integer answers is above 0."""
    terms = [func.coalesce(Submission.data[p].as_integer(), 0) for p in paths if p]
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total > 0


def visits_by_month(session: Session, *, form_id: int, paths: dict[str, str], since: date
                    ) -> list[tuple[str, dict[str, int], int]]:
    """(month, {flag: visits reporting it}, distinct sites visited) of the current visits of one form
    dated from the first day of ``since``'s month on, in one scan.

    Flags: ``armed_presence`` (any armed actor but "none"), ``forced_labour`` (any forced-labour
    indicator, or armed actors' interference naming forced labour), ``children_seen`` (children
    under 15 or youth 15-17 seen), ``fatalities`` (deaths reported since the last visit).
    A visit reaches the server after it happened, so only rows received since then are read
    (``ix_submission_form_received``), and the answers are read only for visits in the window.
    """
    interference = paths.get("armed_interference")
    forced = [c for c in (_reported(paths.get("forced_labour_indicators")),
                          Submission.data[interference].as_string().like('%"forced_labour"%') if interference else None)
              if c is not None]
    conditions: dict[str, Any] = {
        "armed_presence": _reported(paths.get("armed_presence")),
        "forced_labour": or_(*forced) if forced else None,
        "children_seen": _positive(paths.get("children_u15_seen"), paths.get("children_15_17_seen")),
        "fatalities": _positive(paths.get("fatalities_since_last_visit")),
    }
    names = [name for name, cond in conditions.items() if cond is not None]
    month = _visit_month(paths.get("visit_date")).label("month")
    first = since.replace(day=1)
    stmt = (select(month, func.count(func.distinct(Submission.site_id)),
                   *(func.sum(case((conditions[name], 1), else_=0)) for name in names))
            .where(Submission.form_id == form_id, col(Submission.current).is_(True),
                   col(Submission.received_at) >= datetime.combine(first, time.min, tzinfo=UTC),
                   month >= first.strftime("%Y-%m"))
            .group_by(month))
    out = [(row[0], {name: int(v or 0) for name, v in zip(names, row[2:], strict=True)}, int(row[1] or 0))
           for row in session.execute(stmt) if row[0] is not None]
    return sorted(out)


def sites_visited_since(session: Session, day: date) -> int:
    """Mappable sites whose last visit is on or after ``day``."""
    return int(session.execute(select(func.count(Site.id)).where(MAPPABLE,
                                                                 col(Site.last_visit_on) >= day)).scalar_one())


def devices(session: Session, *, limit: int) -> list[tuple[int, str, str, datetime | None]]:
    """(id, name, owner's username, last seen) of devices not revoked, most recently seen first."""
    stmt = (select(Device.id, Device.name, User.username, Device.last_seen_at)
            .join(User, col(User.id) == col(Device.user_id))
            .where(col(Device.revoked_at).is_(None))
            .order_by(col(Device.last_seen_at).is_(None), col(Device.last_seen_at).desc(), col(Device.id))
            .limit(limit))
    return [tuple(r) for r in session.execute(stmt)]


def device_count(session: Session) -> int:
    return int(session.execute(select(func.count(Device.id)).where(col(Device.revoked_at).is_(None))).scalar_one())


def stale_device_count(session: Session, before: datetime) -> int:
    """Devices not revoked that have not synced since ``before`` (or never)."""
    stmt = select(func.count(Device.id)).where(col(Device.revoked_at).is_(None),
                                               or_(col(Device.last_seen_at).is_(None), col(Device.last_seen_at) < before))
    return int(session.execute(stmt).scalar_one())


def sync_health(session: Session) -> dict[str, int]:
    """Current submissions outside case management that need someone: waiting for attachments,
    not mapped onto any site, flagged for review (``needs_review``)."""
    waiting = col(Submission.attachments_present) < col(Submission.attachments_expected)
    stmt = select(func.sum(case((waiting, 1), else_=0)),
                  func.sum(case((Submission.site_match == "unmapped", 1), else_=0)),
                  func.sum(case((Submission.review_state == "needs_review", 1), else_=0)),
                  ).where(col(Submission.current).is_(True), col(Submission.restricted).is_(False))
    cases = case_form_ids(session)
    if cases:
        stmt = stmt.where(col(Submission.form_id).not_in(cases))
    row = session.execute(stmt).one()
    return {"waiting_for_attachments": int(row[0] or 0), "unmapped": int(row[1] or 0),
            "needs_review": int(row[2] or 0)}
