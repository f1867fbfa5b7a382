"""Read models of the sites API: the site list (GeoJSON), one site, unmapped submissions, statistics.

What each role may see of a site (design.md §6): caseworkers get the list only (to name the site
of a case), never visit data; monitors see stages and only their own visits. Stored stages are
read through ``stages.effective_stage`` (the staleness rule).
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Collection
from datetime import date, timedelta
from typing import Any

import shapely
from sqlmodel import Session

from app.identity import Actor
from app.timeutil import isoformat, utcnow
from geodata import ladder, placement, queries, spatial
from geodata.errors import FilterForbidden
from geodata.index import SiteIndexCache, cache_of, indexes
from geodata.schemas import (
    LegalAreaRef,
    MonthStages,
    SiteDetail,
    SiteDetailProperties,
    SiteObservationPublic,
    SiteStats,
    SiteVisit,
    StageChange,
    UnmappedItem,
    UnmappedList,
    VisitPhoto,
)
from geodata.stages import effective_stage, require_site, site_stage, to_visit

#: Roles that see stages and visits (monitors: their own visits only).
VISIT_ROLES = ("admin", "coordinator", "monitor")


def _simplified(session: Session, cache: SiteIndexCache, rows: list[Any], texts: list[str],
                simplify_m: float) -> list[str]:
    """Geometries simplified to ``simplify_m`` metres, computed once per sites version and app."""
    cached = cache.simplified(queries.counter(session, queries.SITES_VERSION), simplify_m)
    missing = [i for i, r in enumerate(rows) if r.code not in cached]
    if missing:
        geoms = shapely.simplify(shapely.from_geojson([texts[i] for i in missing]), simplify_m / spatial.M_PER_DEG,
                                 preserve_topology=True)
        for i, text in zip(missing, shapely.to_geojson(shapely.set_precision(geoms, 1e-6)), strict=True):
            cached[rows[i].code] = str(text)
    return [cached[r.code] for r in rows]


def feature_collection(session: Session, *, actor: Actor, province: str | None = None, kind: str | None = None,
                       stage: int | None = None, bbox: tuple[float, float, float, float] | None = None,
                       visited_since: date | None = None, simplify_m: float | None = None,
                       cache: SiteIndexCache | None = None) -> bytes:
    """GET /api/v1/sites as GeoJSON bytes (the shape of ``schemas.SiteCollection``).

    Built as text from light rows: geometry and JSON list columns are embedded as stored, not
    parsed and re-encoded, so 10,000 sites take a fraction of a second. Recent bodies are kept
    in the app's cache, keyed by everything they depend on: the sites version (geometry, names),
    a fingerprint of the stage columns (any restage moves it), the day (staleness), the caller's
    view and the filters; repeat map loads cost one small query instead of a rebuild.
    """
    cache = cache or cache_of(session)
    with_visits = actor.role in VISIT_ROLES
    if not with_visits and (stage is not None or visited_since is not None):
        raise FilterForbidden("filters by stage or visit date are not available to your role")
    today = utcnow().date()
    key = (queries.counter(session, queries.SITES_VERSION), *queries.stage_fingerprint(session),
           today, with_visits, province, kind, stage, bbox, visited_since, simplify_m)
    cached = cache.site_list(key)
    if cached is not None:
        return cached
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    rows = queries.site_rows(session, province=province, kind=kind, stage=stage, bbox=bbox,
                             visited_since=visited_since)
    geoms_text = [r.geometry for r in rows]
    if simplify_m and rows:
        geoms_text = _simplified(session, cache, rows, geoms_text, simplify_m)

    def raw(value: Any) -> str:
        return value if isinstance(value, str) else dumps(value or [])

    parts = []
    for r, geometry in zip(rows, geoms_text, strict=True):
        head = [dumps(v) for v in (r.code, r.name, r.kind, r.province, r.province_iso)]
        props = (f'{{"code":{head[0]},"name":{head[1]},"kind":{head[2]},"province":{head[3]},'
                 f'"province_iso":{head[4]},"minerals":{raw(r.minerals)}')
        if with_visits:
            stage_now, status = site_stage(r, today)
            props += (f',"stage":{stage_now},"last_known_stage":{r.last_known_stage},"stage_status":"{status}",'
                      f'"red_flag":{"true" if r.red_flag else "false"},'
                      f'"last_visit":{dumps(r.last_visit_on.isoformat()) if r.last_visit_on else "null"},'
                      f'"visit_count":{r.visit_count},"zea_codes":{raw(r.zea_codes)},'
                      f'"permit_codes":{raw(r.permit_codes)}')
        parts.append(f'{{"type":"Feature","id":{head[0]},"geometry":{geometry},"properties":{props}}}}}')
    body = ('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}").encode("utf-8")
    cache.keep_site_list(key, body)
    return body


def site_detail(session: Session, *, actor: Actor, code: str) -> SiteDetail:
    """One site with its stage history, visits and photos (visits: own only for monitors)."""
    site = require_site(session, code)
    with_visits = actor.role in VISIT_ROLES
    props: dict[str, Any] = {"code": site.code, "name": site.name, "kind": site.kind, "province": site.province,
                             "province_iso": site.province_iso, "minerals": site.minerals}
    if with_visits:
        stage, status = site_stage(site, utcnow().date())
        props.update(stage=stage, last_known_stage=site.last_known_stage, stage_status=status,
                     red_flag=site.red_flag, last_visit=site.last_visit_on, visit_count=site.visit_count,
                     zea_codes=site.zea_codes, permit_codes=site.permit_codes)
    props.update(territory=site.territory, area_m2=site.area_m2, source=site.source, lon=site.lon, lat=site.lat,
                 status=site.status, retired_at=site.retired_at)
    legal = placement.legal_context(indexes(session), site.lon, site.lat)
    props.update(legal_areas=[LegalAreaRef(**a) for a in legal.areas], nearest_zea=legal.nearest_zea_code,
                 nearest_zea_m=legal.nearest_zea_m)
    geometry = json.loads(site.geometry)
    if not with_visits:
        return SiteDetail(id=site.code, geometry=geometry, properties=SiteDetailProperties(**props))
    props.update(
        assurance_type=site.assurance_type,
        assurance_valid_until=site.assurance_valid_until,
        stage_reasons=(site.properties or {}).get("stage_reasons", []),
        ladder_version=site.ladder_version,
        attributes={k: v for k, v in (site.properties or {}).items() if k != "stage_reasons"},
    )
    history = queries.stage_history(session, [site.id]).get(site.id, [])
    own = actor.user.id if actor.role == "monitor" else None
    rows = queries.visits_of(session, [site.id], user_id=own)
    photos: dict[int, list[VisitPhoto]] = {}
    for att in queries.attachments_of(session, [r.id for r in rows]):
        photos.setdefault(att.submission_id, []).append(VisitPhoto.from_row(att))
    rules = ladder.load_rules()
    visits = []
    for r in rows:
        v = to_visit(r)
        visits.append(SiteVisit(instance_id=r.instance_id, submission_id=r.id, visit_date=v.on, lon=r.lon, lat=r.lat,
                                site_match=r.site_match, site_distance_m=r.site_distance_m, site_flag=r.site_flag,
                                on_site=ladder.is_on_site(v, rules), red_flags=ladder.serious_abuse(v.answers, rules),
                                photos=photos.get(r.id, [])))
    visits.sort(key=lambda v: (v.visit_date, v.submission_id), reverse=True)
    observations = [SiteObservationPublic(observed_on=o.observed_on, source=o.source, properties=o.properties)
                    for o in queries.observations_of(session, site.id)]
    return SiteDetail(id=site.code, geometry=geometry, properties=SiteDetailProperties(**props),
                      stage_history=[StageChange.from_row(h) for h in history], visits=visits,
                      observations=observations)


def unmapped(session: Session, *, actor: Actor, limit: int = 500, offset: int = 0) -> UnmappedList:
    """Current submissions that need a look: not mapped to any site, or flagged (never case forms)."""
    own = actor.user.id if actor.role == "monitor" else None
    rows = queries.unmapped_submissions(session, user_id=own, limit=limit, offset=offset)
    site_codes = queries.codes_of(session, [r.site_id for r in rows if r.site_id])
    return UnmappedList(items=[UnmappedItem(instance_id=r.instance_id, form_id=r.form_id,
                                            received_at=isoformat(r.received_at), lon=r.lon, lat=r.lat,
                                            site_match=r.site_match, site_flag=r.site_flag,
                                            site_code=site_codes.get(r.site_id), site_distance_m=r.site_distance_m,
                                            submitted_by_user_id=r.submitted_by_user_id) for r in rows],
                        limit=limit, offset=offset)


def _month_ends(today: date, months: int) -> list[date]:
    """The last day of each of the last ``months`` months (the current one ends today), oldest first."""
    ends: list[date] = []
    y, m = today.year, today.month
    for _ in range(max(1, min(months, 240))):
        first_next = date(y + (m == 12), m % 12 + 1, 1)
        ends.append(min(first_next - timedelta(days=1), today))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    ends.reverse()
    return ends


def stats(session: Session, *, months: int = 24, today: date | None = None,
          site_ids: Collection[int] | None = None) -> SiteStats:
    """Sites per stage and per province now, and per stage at the end of each of the last months
    (of the sites in ``site_ids`` only, when given: the map's filters, ``geodata.map_data``)."""
    today = today or utcnow().date()
    sites = queries.mappable_stage_rows(session)
    if site_ids is not None:
        sites = [row for row in sites if row[0] in site_ids]
    by_stage: dict[str, int] = {str(s): 0 for s in range(7)}
    by_province: dict[str, dict[str, int]] = {}
    for _, province, stage, status, last in sites:
        stage_now, _status = effective_stage(stage, status, last, today)
        by_stage[str(stage_now)] += 1
        p = by_province.setdefault(province or "unknown", {str(s): 0 for s in range(7)})
        p[str(stage_now)] += 1
    known = {site_id for site_id, *_ in sites}
    hist: dict[int, list[tuple[date, int]]] = {}
    for site_id, on, stage in queries.all_history(session):
        if site_id in known:
            hist.setdefault(site_id, []).append((on, stage))
    days = {site_id: [r[0] for r in rows] for site_id, rows in hist.items()}
    monthly = []
    for end in _month_ends(today, months):
        counts = {str(s): 0 for s in range(7)}
        counts["0"] = sum(1 for site_id, *_ in sites if site_id not in hist)
        for site_id, rows in hist.items():
            k = bisect.bisect_right(days[site_id], end)
            counts[str(rows[k - 1][1] if k else 0)] += 1
        monthly.append(MonthStages(month=end.strftime("%Y-%m"), stages=counts))
    return SiteStats(sites=len(sites), by_stage=by_stage, by_province=by_province, monthly=monthly,
                     ladder_version=ladder.CURRENT_VERSION)
