"""Placement: which site a submission's point belongs to (one submission, or all of them at once).

A named site (the form's site field) wins; otherwise the containing site, or the nearest within
the tolerance, or none. Strange or missing locations are flagged on the submission, never refused.
Only active sites capture visits; legal areas never do (they are the sites' legal context: the
legal areas containing each site's point, ``derive_legal_codes``, and the nearest ZEA, ``legal_context``).
A visit already mapped onto a retired site stays there (its history is kept; ``remap_all``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlmodel import Session

from app.settings import Settings
from forms.models import CASE_FORM_KINDS
from forms.service import effective_settings
from geodata import queries, spatial
from geodata.index import Indexes, SiteIndexCache, indexes
from geodata.models import Site
from sync.models import Submission


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
                out.append(Placement(site_id, round(float(result.distance_m[i]), 1),
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


def form_mapping(session: Session, form: Any, version: Any = None) -> tuple[bool, str | None]:
    """(mapping on?, site field path) for a form, with the contract's defaults (``version``: one of the
    form's versions the caller holds, spares a read when it is the published one)."""
    settings = effective_settings(session, form, version)
    enabled = bool(settings.get("site_mapping", form.kind not in CASE_FORM_KINDS))
    return enabled, settings.get("site_field")


def named_code(data: dict[str, Any], site_field: str | None) -> str | None:
    """The site code the form's site field names, if any."""
    if not site_field:
        return None
    value = data.get(site_field)
    if value is None or isinstance(value, (list, dict)):
        return None
    return str(value).strip() or None


def placement_of(session: Session, *, lon: float | None, lat: float | None, data: dict[str, Any] | None, form: Any,
                 settings: Settings, cache: SiteIndexCache | None = None, version: Any = None) -> Placement:
    """Where a visit at (``lon``, ``lat``) with answers ``data`` belongs (``disabled``: the form maps no site)."""
    enabled, site_field = form_mapping(session, form, version)
    if not enabled:
        return Placement(None, None, "disabled", None)
    idx = indexes(session, cache)
    (p,) = place(idx, lons=np.array([lon if lon is not None else math.nan]),
                 lats=np.array([lat if lat is not None else math.nan]),
                 named=[named_code(data or {}, site_field)], tolerance_m=settings.site_tolerance_m)
    return p


def map_submission(session: Session, *, submission: Any, form: Any, settings: Settings,
                   cache: SiteIndexCache | None = None) -> set[int]:
    """Set ``submission.site_*``; returns the ids of sites whose stage may have changed."""
    before = {submission.site_id} if submission.site_id else set()
    p = placement_of(session, lon=submission.lon, lat=submission.lat, data=submission.data, form=form,
                     settings=settings, cache=cache)
    submission.site_id, submission.site_distance_m, submission.site_match, submission.site_flag = (
        p.site_id, p.distance_m, p.match, p.flag)
    return before | ({p.site_id} if p.site_id else set())


def remap_all(session: Session, *, settings: Settings, cache: SiteIndexCache | None = None) -> int:
    """Re-map every current submission onto the sites, vectorised; returns how many changed."""
    form_map = {f.id: form_mapping(session, f) for f in queries.all_forms(session)}
    rows = queries.current_locations(session)
    if not rows:
        return 0
    retired = queries.retired_site_ids(session)
    if retired:  # a retired site keeps the visits it had; nothing new maps onto it
        rows = [r for r in rows if r[5] not in retired]
    idx = indexes(session, cache)
    enabled = np.array([form_map.get(r[1], (False, None))[0] for r in rows])
    sel = np.nonzero(enabled)[0]
    lons = np.array([rows[i][2] if rows[i][2] is not None else np.nan for i in sel], dtype=float)
    lats = np.array([rows[i][3] if rows[i][3] is not None else np.nan for i in sel], dtype=float)
    named = [named_code(rows[i][4] or {}, form_map[rows[i][1]][1]) for i in sel]
    placements = place(idx, lons=lons, lats=lats, named=named, tolerance_m=settings.site_tolerance_m)
    new: dict[int, Placement] = {int(i): p for i, p in zip(sel, placements, strict=True)}
    changes = []
    for i, r in enumerate(rows):
        p = new.get(i, Placement(None, None, "disabled", None))
        if (r[5], r[6], r[7], r[8]) != (p.site_id, p.distance_m, p.match, p.flag):
            changes.append({"id": r[0], "site_id": p.site_id, "site_distance_m": p.distance_m, "site_match": p.match,
                            "site_flag": p.flag})
    queries.update_rows(session, Submission, changes)
    session.flush()
    return len(changes)


#: legal-area kinds whose codes a site lists as ``permit_codes`` (titles a visit may quote), besides ZEA
TITLE_KINDS = ("pe", "pr", "quarry")


def derive_legal_codes(session: Session, cache: SiteIndexCache | None = None) -> None:
    """For each active site, the codes of the ZEA and of the titles (PE, PR, quarry authorisations)
    containing its point (legal areas of every layer)."""
    idx = indexes(session, cache)
    sites = queries.mappable_points(session)
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
            kind = idx.legal_kinds[g]
            if kind == "zea":
                zea.setdefault(int(p), []).append(idx.legal_codes[g])
            elif kind in TITLE_KINDS:
                permits.setdefault(int(p), []).append(idx.legal_codes[g])
    changes = []
    for i, (site_id, _, _, old_zea, old_permits) in enumerate(sites):
        z, pm = sorted(set(zea.get(i, []))), sorted(set(permits.get(i, [])))
        if (old_zea or []) != z or (old_permits or []) != pm:
            changes.append({"id": site_id, "zea_codes": z, "permit_codes": pm})
    queries.update_rows(session, Site, changes)
    if changes:
        session.flush()
        session.expire_all()


@dataclass
class LegalContext:
    """The legal areas containing a point, and the nearest ZEA (metres; 0 inside one)."""

    areas: list[dict[str, Any]]
    nearest_zea_code: str | None
    nearest_zea_m: float | None


def legal_context(idx: Indexes, lon: float | None, lat: float | None) -> LegalContext:
    """Which active legal areas contain (``lon``, ``lat``), by layer and code, and how far the nearest ZEA is."""
    if lon is None or lat is None or len(idx.legal) == 0:
        return LegalContext([], None, None)
    _, gi = idx.legal.containing(np.array([lon]), np.array([lat]))
    areas = sorted(({"layer": idx.legal_layers[g], "code": idx.legal_codes[g], "kind": idx.legal_kinds[g],
                     "title_type": idx.legal_title_types[g], "name": idx.legal_names[g]} for g in gi),
                   key=lambda a: (a["layer"], a["kind"], a["code"]))
    zea = np.array([g for g, k in enumerate(idx.legal_kinds) if k == "zea"], dtype=np.int64)
    if len(zea) == 0:
        return LegalContext(areas, None, None)
    d = idx.legal.distances_m(np.full(len(zea), lon), np.full(len(zea), lat), zea)
    best = int(np.argmin(d))
    return LegalContext(areas, idx.legal_codes[zea[best]], round(float(d[best]), 1))
