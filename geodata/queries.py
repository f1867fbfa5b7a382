"""SQL of the geodata capability (the only module here that builds queries)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Text, cast, delete, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from app.rawsql import raw_rows
from forms.models import CASE_FORM_KINDS, Form, FormKind
from geodata.importers import canonical_province
from geodata.models import GeodataCounter, LegalArea, Site, SiteObservation, SiteStage
from sync.models import Submission, SubmissionAttachment

SITES_VERSION = "sites_version"
#: A site or legal area in use; ``RETIRED`` ones left their source (kept with their history and visits).
ACTIVE = "active"
RETIRED = "retired"
#: Sites a visit can be mapped onto, that tablets, statistics and the ladder count: the active ones.
MAPPABLE = Site.status == ACTIVE  # type: ignore[arg-type]


def chunks(values: list, size: int = 900) -> Iterable[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def counter(session: Session, name: str) -> int:
    """The counter's value as stored now: one raw read (``app.snapshots.raw_rows``; every upload reads
    it, issue 13), not the identity map (a bump is Core SQL)."""
    rows = raw_rows(session, _COUNTER_SQL, (name,))
    return int(rows[0][0] or 0) if rows else 0


_COUNTER_SQL = f'SELECT value FROM {GeodataCounter.__tablename__} WHERE name = ?'


def bump_counter(session: Session, name: str) -> int:
    """Add one to a counter in one statement (insert at 1 when missing); returns the new value.

    ``INSERT ... ON CONFLICT DO UPDATE SET value = value + 1``: the database increments the row
    it holds, so two transactions bumping at once both count (a read-modify-write in Python lost
    one update). Same statement on SQLite and PostgreSQL.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = GeodataCounter.__table__  # type: ignore[attr-defined]
    stmt = (dialect.insert(table).values(name=name, value=1)
            .on_conflict_do_update(index_elements=[table.c.name], set_={"value": table.c.value + 1})
            .returning(table.c.value))
    return int(session.execute(stmt).scalar_one())


def site_by_code(session: Session, code: str) -> Site | None:
    return session.exec(select(Site).where(Site.code == code)).first()


def site_id_by_code(session: Session, code: str) -> int | None:
    return session.exec(select(Site.id).where(Site.code == code)).first()


def sites_by_codes(session: Session, codes: list[str]) -> dict[str, Site]:
    out: dict[str, Site] = {}
    for chunk in chunks(codes):
        for site in session.exec(select(Site).where(Site.code.in_(chunk))):  # type: ignore[union-attr]
            out[site.code] = site
    return out


def site_state_by_codes(session: Session, codes: list[str], columns: tuple[str, ...]) -> dict[str, tuple]:
    """code -> (id, *columns) for the sites that exist."""
    out: dict[str, tuple] = {}
    cols = [Site.id, Site.code, *(getattr(Site, c) for c in columns)]
    if len(codes) > 1000:
        # one scan beats many large IN lists (PostgreSQL may plan each as a seq scan × list)
        wanted = set(codes)
        for row in session.execute(select(*cols)):
            if row[1] in wanted:
                out[row[1]] = (row[0], *row[2:])
        return out
    for chunk in chunks(codes):
        for row in session.execute(select(*cols).where(Site.code.in_(chunk))):  # type: ignore[union-attr]
            out[row[1]] = (row[0], *row[2:])
    return out


JSON_LIST_COLUMNS = ("minerals", "zea_codes", "permit_codes")
SITE_LIST_COLUMNS = ("code", "name", "kind", "status", "province", "province_iso", "minerals", "geometry", "stage",
                     "last_known_stage", "stage_status", "red_flag", "last_visit_on", "visit_count", "zea_codes",
                     "permit_codes")


def site_rows(session: Session, **filters: Any) -> list[Any]:
    """The columns the site list needs, as light rows (no ORM objects: 10× faster for 10,000 sites)."""
    stmt = filter_sites(session, _statement_only=True, **filters)
    # JSON columns come back as their text (no decode + re-encode of 30,000 small lists)
    cols = [cast(getattr(Site, c), Text).label(c) if c in JSON_LIST_COLUMNS else getattr(Site, c)
            for c in SITE_LIST_COLUMNS]
    return list(session.execute(stmt.with_only_columns(*cols)))


def stage_fingerprint(session: Session) -> tuple:
    """(sites, last stage computation, total visits): moves whenever any site is restaged."""
    row = session.execute(select(func.count(Site.id), func.max(Site.stage_computed_at), func.sum(Site.visit_count))).one()
    return tuple(row)


def sites_needing_stage_work(session: Session) -> list[int]:
    """Mappable sites with visits, stage history, or a state other than the default."""
    ids = set(session.exec(select(Submission.site_id).where(Submission.site_id.is_not(None)).distinct()))  # type: ignore[union-attr]
    ids |= set(session.exec(select(SiteStage.site_id).distinct()))
    ids |= set(session.exec(select(Site.id).where(MAPPABLE, or_(Site.stage != 0, Site.stage_status != "unassessed",
                                                     Site.visit_count != 0, Site.red_flag == True))))  # noqa: E712
    return sorted(i for i in ids if i is not None)


def index_rows(session: Session) -> list[tuple[int, str, str, str]]:
    """(id, code, geometry, kind) of every active site, ordered by id (for the spatial index)."""
    stmt = select(Site.id, Site.code, Site.geometry, Site.kind).where(MAPPABLE).order_by(Site.id)
    return [tuple(r) for r in session.exec(stmt)]


def legal_index_rows(session: Session) -> list[tuple[int, str, str, str, str, str | None, str]]:
    """(id, code, geometry, kind, layer, title_type, name) of every active legal area, by id."""
    stmt = (select(LegalArea.id, LegalArea.code, LegalArea.geometry, LegalArea.kind, LegalArea.layer,
                   LegalArea.title_type, LegalArea.name)
            .where(LegalArea.status == ACTIVE).order_by(LegalArea.id))
    return [tuple(r) for r in session.exec(stmt)]


def mappable_points(session: Session) -> list[tuple[int, float | None, float | None, list[str], list[str]]]:
    """(id, lon, lat, zea_codes, permit_codes) of every mappable site (for the legal overlaps)."""
    return [tuple(r) for r in session.exec(select(Site.id, Site.lon, Site.lat, Site.zea_codes, Site.permit_codes)
                                            .where(MAPPABLE))]


def mappable_stage_rows(session: Session) -> list[tuple]:
    """(id, province, stage, stage_status, last_visit_on) of every mappable site (for the statistics)."""
    return [tuple(r) for r in session.exec(select(Site.id, Site.province, Site.stage, Site.stage_status,
                                                  Site.last_visit_on)
                                           .where(MAPPABLE))]


def sites_for_restage(session: Session, ids: list[int]) -> list[Site]:
    """The mappable sites among ``ids``, locked for update in id order (fresh from the database).

    Row locks (PostgreSQL; in id order) serialise concurrent restaging of the same site, so two
    visits arriving together cannot interleave their history rewrites. SQLite serialises writers.
    """
    stmt = (select(Site).where(MAPPABLE)
            .order_by(Site.id).with_for_update().execution_options(populate_existing=True))
    if len(ids) > 1000:  # many sites: one scan, filtered here
        wanted = set(ids)
        return [s for s in session.exec(stmt) if s.id in wanted]
    sites: list[Site] = []
    for chunk in chunks(ids):
        sites.extend(session.exec(stmt.where(Site.id.in_(chunk))))  # type: ignore[union-attr]
    return sites


def replace_stage_history(session: Session, site_id: int, rows: list[SiteStage]) -> None:
    session.execute(delete(SiteStage).where(SiteStage.site_id == site_id))
    session.add_all(rows)


def mappable_sites(session: Session) -> list[Site]:
    """The sites a visit can name (the published site list: active sites), by code."""
    return list(session.exec(select(Site).where(MAPPABLE).order_by(Site.code)))


def all_sites(session: Session) -> list[Site]:
    return list(session.exec(select(Site).order_by(Site.code)))


def all_forms(session: Session) -> list[Form]:
    return list(session.exec(select(Form)))


def current_locations(session: Session) -> list[Any]:
    """Every current submission's (id, form_id, lon, lat, data, site_id, site_distance_m, site_match, site_flag)."""
    return list(session.exec(select(Submission.id, Submission.form_id, Submission.lon, Submission.lat,
                                    Submission.data, Submission.site_id, Submission.site_distance_m,
                                    Submission.site_match, Submission.site_flag)
                             .where(Submission.current == True)).all())  # noqa: E712


def update_rows(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key (``rows`` carry ``id``), 1,000 at a time."""
    for chunk in chunks(rows, 1000):
        session.execute(update(model), chunk)


def insert_sites(session: Session, rows: list[dict[str, Any]]) -> None:
    for chunk in chunks(rows, 1000):
        session.execute(Site.__table__.insert(), chunk)  # type: ignore[attr-defined]


def site_id_of_instance(session: Session, instance_id: str) -> int | None:
    """The site of the submission with this instance ID (the version an edit replaces)."""
    return session.exec(select(Submission.site_id).where(Submission.instance_id == instance_id)).first()


def unmapped_submissions(session: Session, *, user_id: int | None, limit: int, offset: int) -> list[Submission]:
    """Current unrestricted submissions not mapped to a site or flagged, newest first; never case forms
    (a child's home is never listed with site data); only ``user_id``'s when given."""
    stmt = (select(Submission).where(Submission.current == True, Submission.restricted == False,  # noqa: E712
                                     or_(Submission.site_match == "unmapped", Submission.site_flag.is_not(None)))
            .order_by(Submission.received_at.desc(), Submission.id.desc()))  # type: ignore[union-attr]
    case_forms = list(session.exec(select(Form.id).where(Form.kind.in_(CASE_FORM_KINDS))))  # type: ignore[union-attr]
    if case_forms:
        stmt = stmt.where(Submission.form_id.not_in(case_forms))  # type: ignore[union-attr]
    if user_id is not None:
        stmt = stmt.where(Submission.submitted_by_user_id == user_id)
    return list(session.exec(stmt.offset(offset).limit(limit)).all())


def codes_of(session: Session, site_ids: list[int]) -> dict[int, str]:
    out: dict[int, str] = {}
    for chunk in chunks(sorted(set(site_ids))):
        for sid, code in session.exec(select(Site.id, Site.code).where(Site.id.in_(chunk))):  # type: ignore[union-attr]
            out[sid] = code
    return out


def attachments_of(session: Session, submission_ids: list[int]) -> list[SubmissionAttachment]:
    out: list[SubmissionAttachment] = []
    for chunk in chunks(submission_ids):
        out.extend(session.exec(select(SubmissionAttachment)
                                .where(SubmissionAttachment.submission_id.in_(chunk))))  # type: ignore[union-attr]
    return out


def filter_sites(session: Session, *, province: str | None = None, kind: str | None = None, stage: int | None = None,
                 bbox: tuple[float, float, float, float] | None = None, visited_since: date | None = None,
                 codes: list[str] | None = None, limit: int | None = None, offset: int = 0,
                 status: str | None = ACTIVE, _statement_only: bool = False):  # noqa: ANN201
    stmt = select(Site)
    if status:
        stmt = stmt.where(Site.status == status)
    if province:
        # accents, case, hyphens and ISO codes all name the same stored province (Kasai-Central, cd-kc)
        name = canonical_province(province)
        stmt = stmt.where(or_(Site.province == name, Site.province_iso == province))
    if kind:
        stmt = stmt.where(Site.kind == kind)
    if stage is not None:
        stmt = stmt.where(Site.stage == stage)
    if bbox:
        min_lon, min_lat, max_lon, max_lat = bbox
        stmt = stmt.where(Site.max_lon >= min_lon, Site.min_lon <= max_lon, Site.max_lat >= min_lat,
                          Site.min_lat <= max_lat)
    if visited_since:
        stmt = stmt.where(Site.last_visit_on >= visited_since)
    if codes is not None:
        stmt = stmt.where(Site.code.in_(codes))  # type: ignore[union-attr]
    stmt = stmt.order_by(Site.code).offset(offset)
    if limit:
        stmt = stmt.limit(limit)
    return stmt if _statement_only else session.exec(stmt)


def site_visit_form_ids(session: Session) -> list[int]:
    return list(session.exec(select(Form.id).where(Form.kind == FormKind.site_visit)))


def visits_of(session: Session, site_ids: list[int], *, user_id: int | None = None) -> list[Any]:
    """Current, unrestricted site-visit submissions of these sites (rows with id, site_id, data, ...)."""
    form_ids = site_visit_form_ids(session)
    if not form_ids or not site_ids:
        return []
    rows: list[Any] = []
    base = (select(Submission.id, Submission.site_id, Submission.data, Submission.lon, Submission.lat,
                   Submission.received_at, Submission.submitted_by_user_id, Submission.instance_id,
                   Submission.site_distance_m, Submission.site_match, Submission.site_flag)
            .where(Submission.current == True, Submission.restricted == False,  # noqa: E712
                   Submission.review_state != "rejected", Submission.form_id.in_(form_ids)))  # type: ignore[union-attr]
    if user_id is not None:
        base = base.where(Submission.submitted_by_user_id == user_id)
    if len(site_ids) > 1000:  # many sites: one scan, filtered here
        wanted = set(site_ids)
        return [r for r in session.exec(base.where(Submission.site_id.is_not(None))) if r.site_id in wanted]  # type: ignore[union-attr]
    for chunk in chunks(site_ids):
        rows.extend(session.exec(base.where(Submission.site_id.in_(chunk))))  # type: ignore[union-attr]
    return rows


def stage_history(session: Session, site_ids: list[int]) -> dict[int, list[SiteStage]]:
    out: dict[int, list[SiteStage]] = {}
    order = (SiteStage.site_id, SiteStage.effective_on, SiteStage.id)
    if len(site_ids) > 1000:  # many sites: one scan, filtered here
        wanted = set(site_ids)
        for row in session.exec(select(SiteStage).order_by(*order)):
            if row.site_id in wanted:
                out.setdefault(row.site_id, []).append(row)
        return out
    for chunk in chunks(site_ids):
        for row in session.exec(select(SiteStage).where(SiteStage.site_id.in_(chunk)).order_by(*order)):  # type: ignore[union-attr]
            out.setdefault(row.site_id, []).append(row)
    return out


def all_history(session: Session) -> list[tuple[int, date, int]]:
    return [tuple(r) for r in session.exec(select(SiteStage.site_id, SiteStage.effective_on, SiteStage.stage)
                                           .order_by(SiteStage.site_id, SiteStage.effective_on, SiteStage.id))]


def count_by(session: Session, *columns) -> list[tuple]:  # noqa: ANN002
    stmt = select(*columns, func.count()).group_by(*columns)
    return [tuple(r) for r in session.exec(stmt)]


# -- retired sites, legal areas, observations ------------------------------------------------------


def site_status_by_code(session: Session) -> dict[str, tuple[int, str]]:
    """code -> (id, status) of every site (for an import replacing the sites as a whole)."""
    return {r[0]: (r[1], r[2]) for r in session.execute(select(Site.code, Site.id, Site.status))}


def retired_site_ids(session: Session) -> set[int]:
    return set(session.exec(select(Site.id).where(Site.status == RETIRED)))


def legal_state(session: Session, layer: str | None, columns: tuple[str, ...]) -> dict[tuple[str, str], tuple]:
    """(layer, code) -> (id, *columns) of the legal areas of ``layer`` (every layer when None)."""
    stmt = select(LegalArea.id, LegalArea.layer, LegalArea.code, *(getattr(LegalArea, c) for c in columns))
    if layer is not None:
        stmt = stmt.where(LegalArea.layer == layer)
    return {(r[1], r[2]): (r[0], *r[3:]) for r in session.execute(stmt)}


def active_legal_codes(session: Session) -> dict[str, list[tuple[str, str]]]:
    """code -> [(layer, kind)] of the active legal areas (to tell a site code apart from a title's)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for code, layer, kind in session.execute(select(LegalArea.code, LegalArea.layer, LegalArea.kind)
                                             .where(LegalArea.status == ACTIVE)):
        out.setdefault(code, []).append((layer, kind))
    return out


def insert_rows(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    for chunk in chunks(rows, 1000):
        session.execute(model.__table__.insert(), chunk)  # type: ignore[attr-defined]


def legal_area(session: Session, layer: str, code: str) -> LegalArea | None:
    return session.exec(select(LegalArea).where(LegalArea.layer == layer, LegalArea.code == code)).first()


def legal_areas_by_code(session: Session, code: str) -> list[LegalArea]:
    return list(session.exec(select(LegalArea).where(LegalArea.code == code).order_by(LegalArea.layer)))


def legal_layer_rows(session: Session, *, kinds: tuple[str, ...] | None = None, layer: str | None = None,
                     bbox: tuple[float, float, float, float] | None = None) -> list[Any]:
    """(id, layer, code, name, kind, title_type, holder, geometry) of the active legal areas, filtered."""
    stmt = (select(LegalArea.id, LegalArea.layer, LegalArea.code, LegalArea.name, LegalArea.kind,
                   LegalArea.title_type, LegalArea.holder, LegalArea.geometry)
            .where(LegalArea.status == ACTIVE))
    if kinds:
        stmt = stmt.where(LegalArea.kind.in_(kinds))  # type: ignore[attr-defined]
    if layer:
        stmt = stmt.where(LegalArea.layer == layer)
    if bbox:
        min_lon, min_lat, max_lon, max_lat = bbox
        stmt = stmt.where(LegalArea.max_lon >= min_lon, LegalArea.min_lon <= max_lon, LegalArea.max_lat >= min_lat,
                          LegalArea.min_lat <= max_lat)
    return list(session.execute(stmt.order_by(LegalArea.layer, LegalArea.code)))


def legal_area_count(session: Session) -> dict[str, int]:
    """Active legal areas per kind."""
    stmt = select(LegalArea.kind, func.count()).where(LegalArea.status == ACTIVE).group_by(LegalArea.kind)
    return {k: n for k, n in session.execute(stmt)}


def replace_observations(session: Session, site_id_by_code: dict[str, int], rows: list[dict[str, Any]],
                         source: str | None) -> None:
    """The observations of these sites from ``source`` become ``rows`` (a re-import never doubles them)."""
    ids = sorted(set(site_id_by_code.values()))
    for chunk in chunks(ids):
        session.execute(delete(SiteObservation).where(SiteObservation.site_id.in_(chunk),  # type: ignore[attr-defined]
                                                      SiteObservation.source == source))
    insert_rows(session, SiteObservation, rows)


def observations_of(session: Session, site_id: int, limit: int = 200) -> list[SiteObservation]:
    stmt = (select(SiteObservation).where(SiteObservation.site_id == site_id)
            .order_by(SiteObservation.observed_on.desc(), SiteObservation.id.desc()).limit(limit))  # type: ignore[union-attr]
    return list(session.exec(stmt))
