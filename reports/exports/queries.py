"""The SQL of exports: the submissions an export reads (filtered, scoped, in id order, a chunk at a
time), how many they are, and the facts of a chunk's sites, submitters, devices and cases."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Text, cast, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.sql import Select
from sqlmodel import Session, col, select

from app.models import Device, User
from cases.models import CaseSubmission, ChildCase
from forms.models import FormVersion
from geodata.models import Site
from sync.models import Submission

#: The submission columns a row of an export needs (never the XML); ``data`` as its JSON text, which
#: ``rows`` decodes with orjson (twice as fast as SQLAlchemy's JSON type with the standard ``json``).
ROW_COLUMNS = (Submission.id, Submission.instance_id, Submission.root_instance_id, Submission.superseded_by,
               Submission.form_version_id, Submission.submitted_by_user_id, Submission.device_id,
               Submission.client_device_id, Submission.received_at, Submission.review_state, Submission.site_id,
               cast(Submission.data, Text).label("data"))


def versions_of(session: Session, form_id: int) -> list[Any]:
    """(id, version, fields, xform_xml) of every version of a form, oldest first."""
    return list(session.exec(select(FormVersion.id, FormVersion.version, FormVersion.fields, FormVersion.xform_xml)
                             .where(FormVersion.form_id == form_id).order_by(col(FormVersion.id))).all())


def site_id_by_code(session: Session, code: str) -> int | None:
    return session.exec(select(Site.id).where(Site.code == code)).first()


def province_has_sites(session: Session, name: str, raw: str) -> bool:
    return session.exec(select(Site.id).where(or_(Site.province == name, Site.province_iso == raw)).limit(1)).first() is not None


def case_roots(*, organisation_id: int | None = None, consenting: bool = False) -> Select:
    """Root instanceIDs of the case-form records linked to a case owned by ``organisation_id``
    and/or whose case consented to statistics (``consent_reporting``)."""
    query = (sa_select(CaseSubmission.root_instance_id)
             .join(ChildCase, ChildCase.id == CaseSubmission.case_id))
    if organisation_id is not None:
        query = query.where(ChildCase.organisation_id == organisation_id)
    if consenting:
        query = query.where(ChildCase.consent_reporting.is_(True))
    return query


def filtered(plan: Any) -> Select:
    """The submissions of ``plan`` (a ``reports.exports.rows.ExportPlan``), filtered and scoped, unordered."""
    f = plan.spec.filters
    query = sa_select(*ROW_COLUMNS).where(Submission.form_id == plan.form_id)
    if not plan.spec.options.include_edits:
        query = query.where(Submission.current.is_(True))
    if plan.version_ids is not None:
        query = query.where(col(Submission.form_version_id).in_(plan.version_ids))
    if f.since is not None:
        query = query.where(Submission.received_at >= f.since)
    if f.until is not None:
        query = query.where(Submission.received_at <= f.until)
    if f.review_state is not None:
        query = query.where(Submission.review_state == f.review_state)
    if plan.site_id is not None:
        query = query.where(Submission.site_id == plan.site_id)
    if plan.province is not None:
        query = query.where(col(Submission.site_id).in_(
            sa_select(Site.id).where(or_(Site.province == plan.province, Site.province_iso == f.province))))
    if plan.submitter_id is not None:
        query = query.where(Submission.submitted_by_user_id == plan.submitter_id)
    if plan.case_rows == "organisation":
        query = query.where(col(Submission.root_instance_id).in_(case_roots(organisation_id=plan.organisation_id)))
    elif plan.case_rows == "consenting":
        query = query.where(col(Submission.root_instance_id).in_(case_roots(consenting=True)))
    elif plan.case_rows == "none_linked":
        query = query.where(col(Submission.root_instance_id).not_in(
            sa_select(CaseSubmission.root_instance_id)))
    return query


def chunk(session: Session, plan: Any, *, after: int, size: int) -> list[Any]:
    """The next ``size`` rows of ``filtered(plan)`` with an id above ``after`` (keyset paging)."""
    query = filtered(plan).where(Submission.id > after).order_by(col(Submission.id)).limit(size)
    return list(session.execute(query).all())


def count(session: Session, plan: Any) -> int:
    return session.execute(sa_select(func.count()).select_from(filtered(plan).subquery())).scalar_one()


def names(session: Session, model: type, ids: Iterable[int | None]) -> dict[int, str]:
    """``{id: name}`` of users (username) or devices (name)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    column = User.username if model is User else Device.name
    return dict(session.execute(sa_select(model.id, column).where(col(model.id).in_(wanted))).all())


def sites(session: Session, ids: Iterable[int | None]) -> dict[int, Any]:
    """``{site id: (code, name, stage, stage_status, last_visit_on)}``."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(sa_select(Site.id, Site.code, Site.name, Site.stage, Site.stage_status, Site.last_visit_on)
                           .where(col(Site.id).in_(wanted))).all()
    return {r.id: r for r in rows}


def case_codes(session: Session, roots: Iterable[str]) -> dict[str, str]:
    """``{root instanceID: case code}`` of case-form records linked to a case."""
    wanted = set(roots)
    if not wanted:
        return {}
    rows = session.execute(sa_select(CaseSubmission.root_instance_id, ChildCase.code)
                           .join(ChildCase, ChildCase.id == CaseSubmission.case_id)
                           .where(col(CaseSubmission.root_instance_id).in_(wanted))).all()
    return dict(rows)
