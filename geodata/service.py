"""Sites: import (upsert by code), point → site mapping, formalisation stages, attestation.

Plain functions over a session; they never commit (the request or CLI scope does). Heavy work
is vectorised: a per-process spatial index (rebuilt only when the ``sites_version`` counter in
the database moves, so several app processes stay correct), bulk re-mapping of every
submission after sites change, and stage recomputation batched over sites.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import delete, update
from sqlmodel import Session, select

from app import audit
from app.blobs import BlobStore
from app.errors import Invalid, NotFound
from app.identity import Actor
from app.settings import Settings
from app.timeutil import isoformat, utcnow
from forms.models import CASE_FORM_KINDS, Form
from forms.service import effective_settings
from geodata import importers, ladder, media, queries, spatial
from geodata.models import Site, SiteStage
from sync.models import Submission, SubmissionAttachment
from sync.submission_xml import by_name

ASSURANCE_TYPES = tuple(ladder.load_rules()["stage6"]["assurance_types"])


# -- spatial index cache -----------------------------------------------------------------


@dataclass
class Indexes:
    version: int
    sites: spatial.SiteIndex  # mappable sites (asm_site, other)
    codes: list[str]
    position: dict[str, int]  # code -> position in ``sites``
    legal: spatial.SiteIndex  # ZEA / PE / PR polygons
    legal_codes: list[str]
    legal_kinds: list[str]


_cache: dict[str, Indexes] = {}
_cache_lock = threading.Lock()


def _index_key(session: Session) -> str:
    return str(session.get_bind().url)


#: session.info key of the sites version read in the session's current transaction.
_VERSION_MEMO = "geodata.sites_version"


def _sites_version(session: Session) -> int:
    """The sites counter, read once per transaction (a batch maps hundreds of submissions).

    Equivalent to reading it each time: an existing counter row is served from the identity map
    within a transaction anyway; the memo also spares the query while no row exists yet.
    ``sites_changed`` drops the memo.
    """
    transaction = session.get_transaction()
    memo = session.info.get(_VERSION_MEMO)
    if memo is not None and transaction is not None and memo[0] is transaction:
        return memo[1]
    version = queries.counter(session, queries.SITES_VERSION)
    session.info[_VERSION_MEMO] = (transaction, version)
    return version


def indexes(session: Session) -> Indexes:
    """The spatial indexes for the current sites, cached per process and database."""
    version = _sites_version(session)
    key = _index_key(session)
    cached = _cache.get(key)
    if cached is not None and cached.version == version:
        return cached
    rows = queries.index_rows(session, queries.MAPPABLE_KINDS)
    legal_rows = session.exec(select(Site.id, Site.code, Site.geometry, Site.kind)
                              .where(Site.kind.in_(queries.LEGAL_KINDS)).order_by(Site.id)).all()  # type: ignore[union-attr]
    geoms = shapely.from_geojson([r[2] for r in rows]) if rows else np.empty(0, dtype=object)
    lgeoms = shapely.from_geojson([r[2] for r in legal_rows]) if legal_rows else np.empty(0, dtype=object)
    built = Indexes(
        version=version,
        sites=spatial.SiteIndex(geoms, np.array([r[0] for r in rows], dtype=np.int64)),
        codes=[r[1] for r in rows],
        position={r[1]: i for i, r in enumerate(rows)},
        legal=spatial.SiteIndex(lgeoms, np.array([r[0] for r in legal_rows], dtype=np.int64)),
        legal_codes=[r[1] for r in legal_rows],
        legal_kinds=[r[3] for r in legal_rows],
    )
    with _cache_lock:
        if len(_cache) > 16:
            _cache.clear()
        _cache[key] = built
    return built


def sites_changed(session: Session) -> int:
    """Bump the sites version: every process rebuilds its index on its next lookup."""
    session.info.pop(_VERSION_MEMO, None)
    return queries.bump_counter(session, queries.SITES_VERSION)


# -- deciding a submission's site --------------------------------------------------------


@dataclass
class Placement:
    site_id: int | None
    distance_m: float | None
    match: str  # inside | nearest | named | unmapped | disabled
    flag: str | None


def place(idx: Indexes, *, lons: np.ndarray, lats: np.ndarray, named: list[str | None], tolerance_m: float) -> list[Placement]:
    """Where each point belongs: named site, containing site, nearest within tolerance, or nowhere.

    When the form names a site and the GPS is farther than the tolerance from it, the named
    site is kept (the monitor chose it) and flagged ``gps_disagrees_with_named_site``.
    """
    lons = np.asarray(lons, dtype=float)
    lats = np.asarray(lats, dtype=float)
    result = idx.sites.match(lons, lats, tolerance_m)
    named_pos = np.array([idx.position.get(c, -1) if c else -1 for c in named], dtype=np.int64)
    has_gps = np.isfinite(lons) & np.isfinite(lats)
    want = np.nonzero((named_pos >= 0) & has_gps)[0]
    named_d = np.full(len(lons), np.nan)
    if len(want):
        named_d[want] = idx.sites.distances_m(lons[want], lats[want], named_pos[want])
    out = []
    for i in range(len(lons)):
        flag = None
        if has_gps[i] and not spatial.in_drc_bbox(lons[i], lats[i]):
            flag = "location_outside_drc"
        code = named[i]
        if code and named_pos[i] < 0:
            flag = "unknown_site_code"
        if named_pos[i] >= 0:
            site_id = int(idx.sites.ids[named_pos[i]])
            if not has_gps[i]:
                out.append(Placement(site_id, None, "named", flag))
                continue
            if result.index[i] == named_pos[i]:
                out.append(Placement(site_id, float(result.distance_m[i]),
                                     "inside" if result.inside[i] else "nearest", flag))
                continue
            d = float(named_d[i])
            if d > tolerance_m:
                flag = "gps_disagrees_with_named_site"
            out.append(Placement(site_id, round(d, 1), "named", flag))
            continue
        if not has_gps[i]:
            out.append(Placement(None, None, "unmapped", flag or "no_location"))
        elif result.index[i] >= 0:
            out.append(Placement(int(idx.sites.ids[result.index[i]]), round(float(result.distance_m[i]), 1),
                                 "inside" if result.inside[i] else "nearest", flag))
        else:
            out.append(Placement(None, None, "unmapped", flag))
    return out


def _form_mapping(session: Session, form: Any) -> tuple[bool, str | None]:
    """(mapping on?, site field path) for a form, with the contract's defaults."""
    settings = effective_settings(session, form)
    enabled = bool(settings.get("site_mapping", form.kind not in CASE_FORM_KINDS))
    return enabled, settings.get("site_field")


def _named_code(data: dict[str, Any], site_field: str | None) -> str | None:
    if not site_field:
        return None
    value = data.get(site_field)
    if value is None or isinstance(value, (list, dict)):
        return None
    return str(value).strip() or None


# -- import ------------------------------------------------------------------------------


#: Columns compared to tell an unchanged site from an updated one on re-import.
COMPARED = ("name", "kind", "minerals", "territory", "properties", "geometry", "province", "province_iso")


def _comparable(stored: tuple) -> tuple:
    """A stored site's COMPARED values without what the server adds itself (stage reasons)."""
    i = COMPARED.index("properties")
    props = {k: v for k, v in (stored[i] or {}).items() if k != "stage_reasons"}
    return (*stored[:i], props, *stored[i + 1:])


def upsert_sites(session: Session, *, read: importers.ReadResult, settings: Settings,
                 blobs: BlobStore | None = None, source: str | None = None, actor: Actor | None = None,
                 progress: Callable[[int], None] | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Insert or update sites by code from a cleaned file; then re-map, restage and republish.

    :returns: a report: created, updated, skipped rows with their problems, warnings.
    """
    frame = read.frame
    report: dict[str, Any] = {"format": read.format, "rows": read.rows_read, "created": 0, "updated": 0, "unchanged": 0,
                              "skipped": len(read.problems), "problems": read.problems, "warnings": read.warnings}
    if len(frame) == 0:
        if read.problems:
            raise Invalid(f"no usable site in the file: {len(read.problems)} rows have problems "
                          f"(first: row {read.problems[0]['row']}: {read.problems[0]['problem']})",
                          code="sites.no_usable_rows", details={"problems": read.problems[:100]})
        raise Invalid("the file holds no sites", code="sites.empty_file")
    if dry_run:
        report["would_import"] = len(frame)
        return report
    geoms = np.asarray(frame.geometry.values, dtype=object)
    reps = shapely.point_on_surface(geoms)
    lons, lats = shapely.get_x(reps), shapely.get_y(reps)
    bounds = shapely.bounds(geoms)
    areas = spatial.area_m2(geoms)
    prov_names, prov_isos = importers.provinces_of(lons, lats)
    texts = shapely.to_geojson(shapely.set_precision(geoms, 1e-6))
    codes = list(frame["code"])
    existing = queries.site_state_by_codes(session, codes, COMPARED)
    now = utcnow()
    new_rows = []
    updates = []
    for i, row in enumerate(frame.itertuples(index=False)):
        values = dict(
            name=row.name, kind=row.kind, minerals=list(row.minerals), territory=row.territory,
            properties=dict(row.properties), geometry=str(texts[i]),
            min_lon=float(bounds[i, 0]), min_lat=float(bounds[i, 1]), max_lon=float(bounds[i, 2]),
            max_lat=float(bounds[i, 3]), lon=round(float(lons[i]), 6), lat=round(float(lats[i]), 6),
            area_m2=round(float(areas[i]), 1), province=prov_names[i], province_iso=prov_isos[i],
            source=source[:200] if source else None, updated_at=now,
        )
        known = existing.get(row.code)
        if known is None:
            new_rows.append(dict(code=row.code, created_at=now, zea_codes=[], permit_codes=[], stage=0,
                                 last_known_stage=0, stage_status="unassessed", red_flag=False, visit_count=0,
                                 **values))
            report["created"] += 1
        elif tuple(values[c] for c in COMPARED) == _comparable(known[1:]):
            report["unchanged"] += 1
        else:
            updates.append({"id": known[0], **values})
            report["updated"] += 1
        if progress and i % 500 == 0:
            progress(i)
    for chunk in queries.chunks(new_rows, 1000):
        session.execute(Site.__table__.insert(), chunk)  # type: ignore[attr-defined]
    for chunk in queries.chunks(updates, 1000):
        session.execute(update(Site), chunk)
    session.flush()
    session.expire_all()
    if progress:
        progress(len(frame))
    if new_rows or updates:
        after_sites_changed(session, settings=settings, blobs=blobs)
    audit.record(session, "sites.import", actor=actor, object_type="site", object_id=None,
                 created=report["created"], updated=report["updated"], unchanged=report["unchanged"],
                 skipped=report["skipped"], source=source)
    return report


def import_file(session: Session, *, path: Path, settings: Settings, filename: str | None = None,
                mapping: str | dict[str, str] | None = None, kind: str | None = None, crs: str | None = None,
                default_radius_m: float | None = 50.0, blobs: BlobStore | None = None,
                actor: Actor | None = None, progress: Callable[[int], None] | None = None,
                dry_run: bool = False) -> dict[str, Any]:
    """Read a site file (any supported format) and upsert its sites. See ``importers.read_sites``."""
    read = importers.read_sites(path, filename=filename, mapping=mapping, kind=kind, crs=crs,
                                default_radius_m=default_radius_m)
    return upsert_sites(session, read=read, settings=settings, blobs=blobs, source=filename or Path(path).name,
                        actor=actor, progress=progress, dry_run=dry_run)


def after_sites_changed(session: Session, *, settings: Settings, blobs: BlobStore | None) -> dict[str, int]:
    """Bump the version, derive legal overlaps, re-map every submission, restage, republish media."""
    sites_changed(session)
    derive_legal_codes(session)
    remapped = remap_all(session, settings=settings)
    staged = recompute_stages(session)
    published = 0
    if blobs is not None:
        published = media.publish(session, blobs=blobs)
    return {"remapped": remapped, "staged": staged, "media_versions": published}


def derive_legal_codes(session: Session) -> None:
    """For each mappable site, the codes of ZEA and PE/PR polygons containing its point."""
    idx = indexes(session)
    sites = session.exec(select(Site.id, Site.lon, Site.lat, Site.zea_codes, Site.permit_codes)
                         .where(Site.kind.in_(queries.MAPPABLE_KINDS))).all()  # type: ignore[union-attr]
    if not sites:
        return
    lons = np.array([s[1] if s[1] is not None else np.nan for s in sites])
    lats = np.array([s[2] if s[2] is not None else np.nan for s in sites])
    ok = np.isfinite(lons) & np.isfinite(lats)
    zea: dict[int, list[str]] = {}
    permits: dict[int, list[str]] = {}
    if len(idx.legal) and ok.any():
        pi, gi = idx.legal.containing(np.where(ok, lons, 0), np.where(ok, lats, 0))
        for p, g in zip(pi, gi, strict=True):
            if not ok[p]:
                continue
            target = zea if idx.legal_kinds[g] == "zea" else permits
            target.setdefault(int(p), []).append(idx.legal_codes[g])
    changes = []
    for i, (site_id, _, _, old_zea, old_permits) in enumerate(sites):
        z, pm = sorted(zea.get(i, [])), sorted(permits.get(i, []))
        if (old_zea or []) != z or (old_permits or []) != pm:
            changes.append({"id": site_id, "zea_codes": z, "permit_codes": pm})
    for chunk in queries.chunks(changes, 1000):
        session.execute(update(Site), chunk)
    if changes:
        session.flush()
        session.expire_all()


def remap_all(session: Session, *, settings: Settings) -> int:
    """Re-map every current submission onto the sites, vectorised; returns how many changed."""
    forms = {f.id: f for f in session.exec(select(Form))}
    form_map = {fid: _form_mapping(session, f) for fid, f in forms.items()}
    rows = session.exec(select(Submission.id, Submission.form_id, Submission.lon, Submission.lat, Submission.data,
                               Submission.site_id, Submission.site_distance_m, Submission.site_match,
                               Submission.site_flag).where(Submission.current == True)).all()  # noqa: E712
    if not rows:
        return 0
    idx = indexes(session)
    enabled = np.array([form_map.get(r[1], (False, None))[0] for r in rows])
    sel = np.nonzero(enabled)[0]
    lons = np.array([rows[i][2] if rows[i][2] is not None else np.nan for i in sel], dtype=float)
    lats = np.array([rows[i][3] if rows[i][3] is not None else np.nan for i in sel], dtype=float)
    named = [_named_code(rows[i][4] or {}, form_map[rows[i][1]][1]) for i in sel]
    placements = place(idx, lons=lons, lats=lats, named=named, tolerance_m=settings.site_tolerance_m)
    new: dict[int, Placement] = {int(i): p for i, p in zip(sel, placements, strict=True)}
    changes = []
    touched: set[int] = set()
    for i, r in enumerate(rows):
        p = new.get(i, Placement(None, None, "disabled", None))
        if (r[5], r[6], r[7], r[8]) != (p.site_id, p.distance_m, p.match, p.flag):
            changes.append({"id": r[0], "site_id": p.site_id, "site_distance_m": p.distance_m, "site_match": p.match,
                            "site_flag": p.flag})
            touched.update(x for x in (r[5], p.site_id) if x is not None)
    for chunk in queries.chunks(changes, 1000):
        session.execute(update(Submission), chunk)
    session.flush()
    return len(changes)


# -- stages ------------------------------------------------------------------------------


def _visit_date(data: dict[str, Any], received_at: datetime | None) -> date:
    field = ladder.load_rules()["visit_date_field"]
    for path, value in data.items():
        if path.rsplit("/", 1)[-1] == field and isinstance(value, str):
            try:
                return date.fromisoformat(value[:10])
            except ValueError:
                break
    return (received_at or utcnow()).date()


def to_visit(row: Any) -> ladder.Visit:
    """A submission row as ladder evidence: answers by name, repeats by name (list of instances)."""
    data = row.data or {}
    answers = by_name(data)
    for path, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            answers[path.rsplit("/", 1)[-1]] = value
    return ladder.Visit(submission_id=row.id, on=_visit_date(data, row.received_at), answers=answers,
                        located=row.lon is not None and row.lat is not None)


def recompute_stages(session: Session, site_ids: list[int] | None = None, *, today: date | None = None) -> int:
    """Recompute the stage and stage history of these sites (all mappable sites when None).

    :returns: how many sites changed stage.
    """
    today = today or utcnow().date()
    if site_ids is None:
        # only sites with visits, history or a non-default state can need work
        ids = queries.sites_needing_stage_work(session)
    else:
        ids = sorted({i for i in site_ids if i is not None})
    if not ids:
        return 0
    # Row locks (PostgreSQL; in id order) serialise concurrent restaging of the same site, so two
    # visits arriving together cannot interleave their history rewrites. SQLite serialises writers.
    stmt = (select(Site).where(Site.kind.in_(queries.MAPPABLE_KINDS))  # type: ignore[union-attr]
            .order_by(Site.id).with_for_update().execution_options(populate_existing=True))
    sites: list[Site] = []
    if len(ids) > 1000:  # many sites: one scan, filtered here
        wanted = set(ids)
        sites = [s for s in session.exec(stmt) if s.id in wanted]
    for chunk in queries.chunks(ids) if len(ids) <= 1000 else []:
        sites.extend(session.exec(stmt.where(Site.id.in_(chunk))))  # type: ignore[union-attr]
    if not sites:
        return 0
    ids = [s.id for s in sites]
    visits: dict[int, list[ladder.Visit]] = {}
    for row in queries.visits_of(session, ids):
        visits.setdefault(row.site_id, []).append(to_visit(row))
    existing = queries.stage_history(session, ids)
    changed = 0
    now = utcnow()
    for site in sites:
        site_visits = visits.get(site.id, [])
        context = ladder.SiteContext(legal_codes=[*site.zea_codes, *site.permit_codes],
                                     assurance_type=site.assurance_type,
                                     assurance_valid_until=site.assurance_valid_until)
        hist = ladder.history(site_visits, context, today)
        current = ladder.evaluate(site_visits, context, today)
        wanted = [(d, r.stage, r.last_known_stage, r.status, r.red_flag, r.submission_id, r.ladder_version)
                  for d, r in hist]
        have = [(h.effective_on, h.stage, h.last_known_stage, h.status, h.red_flag, h.submission_id, h.ladder_version)
                for h in existing.get(site.id, [])]
        if wanted != have:
            session.execute(delete(SiteStage).where(SiteStage.site_id == site.id))
            for d, r in hist:
                session.add(SiteStage(site_id=site.id, stage=r.stage, last_known_stage=r.last_known_stage,
                                      status=r.status, red_flag=r.red_flag, submission_id=r.submission_id,
                                      effective_on=d, ladder_version=r.ladder_version, reasons=r.reasons,
                                      computed_at=now))
        dates = sorted(site_visits, key=lambda v: (v.on, v.submission_id or 0))
        last = dates[-1] if dates else None
        new_state = (current.stage, current.last_known_stage, current.status, current.red_flag, current.ladder_version,
                     len(site_visits), last.on if last else None, last.submission_id if last else None)
        old_state = (site.stage, site.last_known_stage, site.stage_status, site.red_flag, site.ladder_version,
                     site.visit_count, site.last_visit_on, site.last_visit_submission_id)
        if new_state != old_state or (site.properties or {}).get("stage_reasons") != current.reasons:
            if (site.stage, site.stage_status) != (current.stage, current.status):
                changed += 1
            (site.stage, site.last_known_stage, site.stage_status, site.red_flag, site.ladder_version,
             site.visit_count, site.last_visit_on, site.last_visit_submission_id) = new_state
            site.stage_computed_at = now
            site.properties = {**(site.properties or {}), "stage_reasons": current.reasons}
            session.add(site)
    session.flush()
    return changed


# -- one submission (called from geodata.ingest) -----------------------------------------


def map_submission(session: Session, *, submission: Any, form: Any, settings: Settings) -> set[int]:
    """Set ``submission.site_*``; returns the ids of sites whose stage may have changed."""
    enabled, site_field = _form_mapping(session, form)
    before = {submission.site_id} if submission.site_id else set()
    if not enabled:
        submission.site_id, submission.site_distance_m = None, None
        submission.site_match, submission.site_flag = "disabled", None
        return before
    idx = indexes(session)
    lon = submission.lon if submission.lon is not None else math.nan
    lat = submission.lat if submission.lat is not None else math.nan
    (p,) = place(idx, lons=np.array([lon]), lats=np.array([lat]), named=[_named_code(submission.data or {}, site_field)],
                 tolerance_m=settings.site_tolerance_m)
    submission.site_id, submission.site_distance_m, submission.site_match, submission.site_flag = (
        p.site_id, p.distance_m, p.match, p.flag)
    return before | ({p.site_id} if p.site_id else set())


# -- attestation -------------------------------------------------------------------------


def require_site(session: Session, code: str) -> Site:
    site = queries.site_by_code(session, code)
    if site is None:
        raise NotFound(f"no site with code {code!r}", code="sites.not_found")
    return site


def set_assurance(session: Session, *, code: str, assurance_type: str | None, valid_until: date | None,
                  actor: Actor | None = None) -> Site:
    """Record (or clear, with ``assurance_type=None``) a site's third-party attestation; restage it."""
    site = require_site(session, code)
    if assurance_type is not None:
        if assurance_type not in ASSURANCE_TYPES:
            raise Invalid(f"unknown assurance type {assurance_type!r}; use one of {', '.join(ASSURANCE_TYPES)}",
                          code="sites.bad_assurance_type")
        if valid_until is None:
            raise Invalid("an attestation needs valid_until (YYYY-MM-DD)", code="sites.assurance_without_expiry")
    site.assurance_type = assurance_type
    site.assurance_valid_until = valid_until if assurance_type else None
    site.updated_at = utcnow()
    session.add(site)
    session.flush()
    recompute_stages(session, [site.id])
    audit.record(session, "site.set_assurance", actor=actor, object_type="site", object_id=site.code,
                 assurance_type=assurance_type, valid_until=valid_until.isoformat() if valid_until else None)
    return site


def recompute_all(session: Session, *, settings: Settings, remap: bool = True) -> dict[str, int]:
    """``asmfield sites recompute``: legal overlaps, (re-map,) every site's stage and history."""
    derive_legal_codes(session)
    remapped = remap_all(session, settings=settings) if remap else 0
    return {"remapped": remapped, "stage_changes": recompute_stages(session)}


# -- read models -------------------------------------------------------------------------

#: What each role may see of a site (design.md §6): caseworkers get the list only (to name
#: the site of a case), never visit data; monitors see stages and only their own visits.
VISIT_ROLES = ("admin", "coordinator", "monitor")


def effective_stage(site: Any, today: date) -> tuple[int, str]:
    """Stage and status as of ``today``: a stage whose last on-site visit expired counts as 0."""
    days = ladder.load_rules()["valid_visit_days"]
    if site.stage_status != "unassessed" and site.last_visit_on and (today - site.last_visit_on).days > days:
        return 0, "unassessed"
    return site.stage, site.stage_status


def _properties(site: Any, *, with_visits: bool, today: date) -> dict[str, Any]:
    props: dict[str, Any] = {"code": site.code, "name": site.name, "kind": site.kind, "province": site.province,
                             "province_iso": site.province_iso, "minerals": site.minerals}
    if with_visits:
        stage, status = effective_stage(site, today)
        props.update(stage=stage, last_known_stage=site.last_known_stage, stage_status=status,
                     red_flag=site.red_flag, last_visit=site.last_visit_on.isoformat() if site.last_visit_on else None,
                     visit_count=site.visit_count, zea_codes=site.zea_codes, permit_codes=site.permit_codes)
    return props


#: Recent site-list bodies, keyed by everything they depend on: the sites version (geometry,
#: names), a fingerprint of the stage columns (any restage moves it), the day (staleness), the
#: caller's view and the filters. Repeat map loads cost one small query instead of a rebuild.
_list_cache: dict[tuple, bytes] = {}

#: Simplified geometries per (database, sites version, tolerance): code -> GeoJSON text.
_simplified_cache: dict[tuple[str, int, float], dict[str, str]] = {}


def _simplified(session: Session, rows: list[Any], texts: list[str], simplify_m: float) -> list[str]:
    """Geometries simplified to ``simplify_m`` metres, computed once per sites version and process."""
    key = (_index_key(session), queries.counter(session, queries.SITES_VERSION), round(simplify_m, 1))
    cached = _simplified_cache.get(key)
    if cached is None:
        cached = {}
        with _cache_lock:
            if len(_simplified_cache) > 8:
                _simplified_cache.clear()
            _simplified_cache[key] = cached
    missing = [i for i, r in enumerate(rows) if r.code not in cached]
    if missing:
        geoms = shapely.simplify(shapely.from_geojson([texts[i] for i in missing]), simplify_m / spatial.M_PER_DEG,
                                 preserve_topology=True)
        for i, text in zip(missing, shapely.to_geojson(shapely.set_precision(geoms, 1e-6)), strict=True):
            cached[rows[i].code] = str(text)
    return [cached[r.code] for r in rows]


def feature_collection(session: Session, *, actor: Actor, province: str | None = None, kind: str | None = None,
                       stage: int | None = None, bbox: tuple[float, float, float, float] | None = None,
                       visited_since: date | None = None, simplify_m: float | None = None) -> bytes:
    """GET /api/v1/sites as GeoJSON bytes.

    Built as text from light rows: geometry and JSON list columns are embedded as stored, not
    parsed and re-encoded, so 10,000 sites take a fraction of a second.
    """
    import json

    with_visits = actor.role in VISIT_ROLES
    if not with_visits and (stage is not None or visited_since is not None):
        raise Invalid("filters by stage or visit date are not available to your role", code="sites.filter_forbidden")
    today = utcnow().date()
    key = (_index_key(session), queries.counter(session, queries.SITES_VERSION), *queries.stage_fingerprint(session),
           today, with_visits, province, kind, stage, bbox, visited_since, simplify_m)
    cached = _list_cache.get(key)
    if cached is not None:
        return cached
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    rows = queries.site_rows(session, province=province, kind=kind, stage=stage, bbox=bbox,
                             visited_since=visited_since)
    geoms_text = [r.geometry for r in rows]
    if simplify_m and rows:
        geoms_text = _simplified(session, rows, geoms_text, simplify_m)

    def raw(value: Any) -> str:
        return value if isinstance(value, str) else dumps(value or [])

    stale_days = ladder.load_rules()["valid_visit_days"]
    parts = []
    for r, geometry in zip(rows, geoms_text, strict=True):
        head = [dumps(v) for v in (r.code, r.name, r.kind, r.province, r.province_iso)]
        props = (f'{{"code":{head[0]},"name":{head[1]},"kind":{head[2]},"province":{head[3]},'
                 f'"province_iso":{head[4]},"minerals":{raw(r.minerals)}')
        if with_visits:
            stage_now, status = r.stage, r.stage_status
            if status != "unassessed" and r.last_visit_on and (today - r.last_visit_on).days > stale_days:
                stage_now, status = 0, "unassessed"
            props += (f',"stage":{stage_now},"last_known_stage":{r.last_known_stage},"stage_status":"{status}",'
                      f'"red_flag":{"true" if r.red_flag else "false"},'
                      f'"last_visit":{dumps(r.last_visit_on.isoformat()) if r.last_visit_on else "null"},'
                      f'"visit_count":{r.visit_count},"zea_codes":{raw(r.zea_codes)},'
                      f'"permit_codes":{raw(r.permit_codes)}')
        parts.append(f'{{"type":"Feature","id":{head[0]},"geometry":{geometry},"properties":{props}}}}}')
    body = ('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}").encode("utf-8")
    with _cache_lock:
        while len(_list_cache) >= 6:
            _list_cache.pop(next(iter(_list_cache)))
        _list_cache[key] = body
    return body


def site_detail(session: Session, *, actor: Actor, code: str) -> dict[str, Any]:
    """One site with its stage history, visits and photos (visits: own only for monitors)."""
    import json

    site = require_site(session, code)
    with_visits = actor.role in VISIT_ROLES
    out: dict[str, Any] = {"type": "Feature", "id": site.code, "geometry": json.loads(site.geometry),
                           "properties": _properties(site, with_visits=with_visits, today=utcnow().date())}
    out["properties"].update(territory=site.territory, area_m2=site.area_m2, source=site.source,
                             lon=site.lon, lat=site.lat)
    if not with_visits:
        return out
    out["properties"].update(
        assurance_type=site.assurance_type,
        assurance_valid_until=site.assurance_valid_until.isoformat() if site.assurance_valid_until else None,
        stage_reasons=(site.properties or {}).get("stage_reasons", []),
        ladder_version=site.ladder_version,
        attributes={k: v for k, v in (site.properties or {}).items() if k != "stage_reasons"},
    )
    history = queries.stage_history(session, [site.id]).get(site.id, [])
    out["stage_history"] = [{"effective_on": h.effective_on.isoformat(), "stage": h.stage,
                             "last_known_stage": h.last_known_stage, "status": h.status, "red_flag": h.red_flag,
                             "submission_id": h.submission_id, "ladder_version": h.ladder_version, "reasons": h.reasons}
                            for h in history]
    own = actor.user.id if actor.role == "monitor" else None
    rows = queries.visits_of(session, [site.id], user_id=own)
    ids = [r.id for r in rows]
    photos: dict[int, list[dict[str, Any]]] = {}
    for chunk in queries.chunks(ids):
        for att in session.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id.in_(chunk))):  # type: ignore[union-attr]
            photos.setdefault(att.submission_id, []).append({
                "name": att.name, "media_type": att.media_type, "received": att.received,
                "url": f"/api/v1/media/{att.sha256}" if att.received and att.sha256 else None})
    visits = []
    for r in rows:
        v = to_visit(r)
        visits.append({"instance_id": r.instance_id, "submission_id": r.id, "visit_date": v.on.isoformat(),
                       "lon": r.lon, "lat": r.lat, "site_match": r.site_match, "site_distance_m": r.site_distance_m,
                       "site_flag": r.site_flag, "on_site": ladder.is_on_site(v, ladder.load_rules()),
                       "red_flags": ladder.serious_abuse(v.answers, ladder.load_rules()),
                       "photos": photos.get(r.id, [])})
    out["visits"] = sorted(visits, key=lambda v: (v["visit_date"], v["submission_id"]), reverse=True)
    return out


def unmapped(session: Session, *, actor: Actor, limit: int = 500, offset: int = 0) -> dict[str, Any]:
    """Current submissions that need a look: not mapped to any site, or flagged."""
    from sqlalchemy import or_

    stmt = (select(Submission).where(Submission.current == True, Submission.restricted == False,  # noqa: E712
                                     or_(Submission.site_match == "unmapped", Submission.site_flag.is_not(None)))
            .order_by(Submission.received_at.desc(), Submission.id.desc()))  # type: ignore[union-attr]
    case_forms = list(session.exec(select(Form.id).where(Form.kind.in_(CASE_FORM_KINDS))))  # type: ignore[union-attr]
    if case_forms:  # a child's home is never listed with site data
        stmt = stmt.where(Submission.form_id.not_in(case_forms))  # type: ignore[union-attr]
    if actor.role == "monitor":
        stmt = stmt.where(Submission.submitted_by_user_id == actor.user.id)
    rows = session.exec(stmt.offset(offset).limit(limit)).all()
    site_codes = {}
    ids = sorted({r.site_id for r in rows if r.site_id})
    for chunk in queries.chunks(ids):
        for sid, code in session.exec(select(Site.id, Site.code).where(Site.id.in_(chunk))):  # type: ignore[union-attr]
            site_codes[sid] = code
    return {"items": [{"instance_id": r.instance_id, "form_id": r.form_id, "received_at": isoformat(r.received_at),
                       "lon": r.lon, "lat": r.lat, "site_match": r.site_match, "site_flag": r.site_flag,
                       "site_code": site_codes.get(r.site_id), "site_distance_m": r.site_distance_m,
                       "submitted_by_user_id": r.submitted_by_user_id} for r in rows],
            "limit": limit, "offset": offset}


def stats(session: Session, *, months: int = 24, today: date | None = None) -> dict[str, Any]:
    """Sites per stage and per province now, and per stage at the end of each of the last months."""
    today = today or utcnow().date()
    sites = session.exec(select(Site.id, Site.province, Site.stage, Site.stage_status, Site.last_visit_on)
                         .where(Site.kind.in_(queries.MAPPABLE_KINDS))).all()  # type: ignore[union-attr]
    days = ladder.load_rules()["valid_visit_days"]
    by_stage: dict[str, int] = {str(s): 0 for s in range(7)}
    by_province: dict[str, dict[str, int]] = {}
    for _, province, stage, status, last in sites:
        if status != "unassessed" and last and (today - last).days > days:
            stage = 0  # same rule as effective_stage
        by_stage[str(stage)] += 1
        p = by_province.setdefault(province or "unknown", {str(s): 0 for s in range(7)})
        p[str(stage)] += 1
    # month ends, oldest first
    ends: list[date] = []
    y, m = today.year, today.month
    for _ in range(max(1, min(months, 240))):
        first_next = date(y + (m == 12), m % 12 + 1, 1)
        ends.append(min(first_next - _one_day(), today))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    ends.reverse()
    hist: dict[int, list[tuple[date, int]]] = {}
    for site_id, on, stage in queries.all_history(session):
        hist.setdefault(site_id, []).append((on, stage))
    import bisect

    known = {site_id for site_id, *_ in sites}
    hist = {site_id: rows for site_id, rows in hist.items() if site_id in known}
    days = {site_id: [r[0] for r in rows] for site_id, rows in hist.items()}
    monthly = []
    for end in ends:
        counts = {str(s): 0 for s in range(7)}
        counts["0"] = sum(1 for site_id, *_ in sites if site_id not in hist)
        for site_id, rows in hist.items():
            k = bisect.bisect_right(days[site_id], end)
            counts[str(rows[k - 1][1] if k else 0)] += 1
        monthly.append({"month": end.strftime("%Y-%m"), "stages": counts})
    return {"sites": len(sites), "by_stage": by_stage, "by_province": by_province, "monthly": monthly,
            "ladder_version": ladder.CURRENT_VERSION}


def _one_day():  # noqa: ANN202
    from datetime import timedelta

    return timedelta(days=1)


def export(session: Session, *, fmt: str, path: Path) -> Path:
    """Write every site (with stage columns) as GeoJSON or GeoPackage to ``path``."""
    import geopandas as gpd

    if fmt not in ("geojson", "gpkg"):
        raise Invalid(f"unknown export format {fmt!r}; use geojson or gpkg", code="sites.bad_format")
    today = utcnow().date()
    rows = []
    for site in session.exec(select(Site).order_by(Site.code)):
        stage, status = effective_stage(site, today)
        rows.append({"code": site.code, "name": site.name, "kind": site.kind, "province": site.province,
                     "province_iso": site.province_iso, "territory": site.territory,
                     "minerals": ",".join(site.minerals or []), "stage": stage,
                     "stage_status": status, "red_flag": site.red_flag,
                     "last_visit": site.last_visit_on.isoformat() if site.last_visit_on else None,
                     "visit_count": site.visit_count, "zea_codes": ",".join(site.zea_codes or []),
                     "permit_codes": ",".join(site.permit_codes or []), "source": site.source,
                     "geometry": shapely.from_geojson(site.geometry)})
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326) if rows else gpd.GeoDataFrame(
        {"code": []}, geometry=[], crs=4326)
    if fmt == "geojson":
        frame.to_file(path, driver="GeoJSON")
    else:
        frame.to_file(path, driver="GPKG", layer="sites")
    return path
