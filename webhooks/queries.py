"""SQL of the webhooks capability (the only module here that builds queries)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from app.models import Organisation
from app.rawsql import raw_rows
from cases.models import ChildCase
from forms.models import Form, FormVersion
from geodata.models import Site
from webhooks.models import WebhookAttempt, WebhookCounter, WebhookDelivery, WebhookEndpoint

ENDPOINTS_VERSION = "endpoints_version"


def counter(session: Session, name: str) -> int:
    """The counter's value as stored now: one raw read (``app.snapshots.raw_rows``; every upload reads
    it, issue 13), not the identity map (a bump is Core SQL)."""
    rows = raw_rows(session, _COUNTER_SQL, (name,))
    return int(rows[0][0] or 0) if rows else 0


_COUNTER_SQL = f'SELECT value FROM {WebhookCounter.__tablename__} WHERE name = ?'


def bump_counter(session: Session, name: str) -> int:
    """Add one in one statement (``INSERT … ON CONFLICT DO UPDATE SET value = value + 1``)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = WebhookCounter.__table__  # type: ignore[attr-defined]
    stmt = (dialect.insert(table).values(name=name, value=1)
            .on_conflict_do_update(index_elements=[table.c.name], set_={"value": table.c.value + 1})
            .returning(table.c.value))
    return int(session.execute(stmt).scalar_one())


# -- endpoints --------------------------------------------------------------------------------


def endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.id))))


def endpoint_filters(session: Session) -> list[tuple[int, list[str], str | None]]:
    """(id, events, form) of every endpoint: what the outbox matches events against."""
    rows = session.execute(select(WebhookEndpoint.id, WebhookEndpoint.events, WebhookEndpoint.form)
                           .order_by(col(WebhookEndpoint.id)))
    return [(int(i), list(events or []), form) for i, events, form in rows]


def endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint | None:
    return session.get(WebhookEndpoint, endpoint_id)


def delete_endpoint(session: Session, endpoint_id: int) -> None:
    ids = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint_id)
    session.execute(delete(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(ids)))
    session.execute(update(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
                    .values(replay_of=None))
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id))
    session.execute(delete(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id))


def pending_counts(session: Session) -> dict[int, int]:
    rows = session.execute(select(WebhookDelivery.endpoint_id, func.count())
                           .where(WebhookDelivery.state == "pending").group_by(WebhookDelivery.endpoint_id))
    return {int(e): int(n) for e, n in rows}


# -- deliveries -------------------------------------------------------------------------------


def delivery(session: Session, delivery_id: int) -> WebhookDelivery | None:
    return session.get(WebhookDelivery, delivery_id)


def deliveries(session: Session, *, endpoint_id: int | None = None, state: str | None = None,
               limit: int = 50) -> list[WebhookDelivery]:
    query = select(WebhookDelivery)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    if state is not None:
        query = query.where(WebhookDelivery.state == state)
    return list(session.exec(query.order_by(col(WebhookDelivery.id).desc()).limit(limit)))


def attempts(session: Session, delivery_ids: list[int]) -> list[WebhookAttempt]:
    if not delivery_ids:
        return []
    return list(session.exec(select(WebhookAttempt).where(col(WebhookAttempt.delivery_id).in_(delivery_ids))
                             .order_by(col(WebhookAttempt.id))))


def due(session: Session, now: datetime, limit: int) -> list[int]:
    """Ids of pending deliveries of active endpoints whose time has come and that no worker holds."""
    rows = session.execute(
        select(WebhookDelivery.id)
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(WebhookDelivery.state == "pending", col(WebhookDelivery.next_attempt_at) <= now,
               col(WebhookEndpoint.active).is_(True),
               or_(col(WebhookDelivery.claimed_until).is_(None), col(WebhookDelivery.claimed_until) < now))
        .order_by(col(WebhookDelivery.next_attempt_at), col(WebhookDelivery.id)).limit(limit))
    return [int(i) for (i,) in rows]


def claim(session: Session, delivery_id: int, now: datetime, until: datetime) -> bool:
    """Take the row until ``until`` in one conditional UPDATE: of several workers, exactly one wins."""
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.state == "pending",
               or_(col(WebhookDelivery.claimed_until).is_(None), col(WebhookDelivery.claimed_until) < now))
        .values(claimed_until=until))
    return result.rowcount == 1  # type: ignore[attr-defined]


def due_now(session: Session, endpoint_id: int, now: datetime) -> None:
    """Make every pending delivery of the endpoint due now (in one statement)."""
    session.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.state == "pending",
                           col(WebhookDelivery.next_attempt_at) > now)
                    .values(next_attempt_at=now))


def next_due_at(session: Session) -> datetime | None:
    """When the next pending delivery of an active endpoint is due and free (None: nothing pending)."""
    later = case((col(WebhookDelivery.claimed_until) > col(WebhookDelivery.next_attempt_at),
                  col(WebhookDelivery.claimed_until)), else_=col(WebhookDelivery.next_attempt_at))
    return session.execute(
        select(func.min(later))
        .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
        .where(WebhookDelivery.state == "pending", col(WebhookEndpoint.active).is_(True))).scalar()


# -- what payloads name -----------------------------------------------------------------------


def site_facts(session: Session, site_id: int | None) -> tuple[str, str] | None:
    """(code, name) of a site."""
    if site_id is None:
        return None
    row = session.execute(select(Site.code, Site.name).where(Site.id == site_id)).first()
    return (row[0], row[1]) if row else None


def case_facts(session: Session, case_id: int) -> tuple[str, str | None] | None:
    """(pseudonymous case code, name of the owning organisation) — nothing identifying a child."""
    row = session.execute(select(ChildCase.code, Organisation.name)
                          .outerjoin(Organisation, col(Organisation.id) == col(ChildCase.organisation_id))
                          .where(ChildCase.id == case_id)).first()
    return (row[0], row[1]) if row else None


def form_and_version(session: Session, form_id: int, version_id: int) -> tuple[Form | None, FormVersion | None]:
    return session.get(Form, form_id), session.get(FormVersion, version_id)


def form_exists(session: Session, xml_form_id: str) -> bool:
    return session.execute(select(Form.id).where(Form.xml_form_id == xml_form_id)).first() is not None


def form_choices(session: Session) -> list[tuple[str, str]]:
    """(xml form id, title) of every form, for the web page's form filter."""
    rows = session.execute(select(Form.xml_form_id, Form.title).order_by(col(Form.xml_form_id)))
    return [(i, t) for i, t in rows]
