"""Import of sites and legal areas from a cleaned file, then re-map, restage and republish.

``geodata.importers`` reads and cleans a file (no database); this module decides where each row goes
and stores it, then runs what a change implies (``after_sites_changed``): bump the sites version,
derive legal overlaps, re-map every submission, restage, regenerate ``sites.csv``/``sites.geojson``.

Where rows go (``target``): ``sites`` (mine sites monitors visit), ``legal-areas`` (titles, ZEA,
forbidden zones, quarry authorisations, protected areas, in a ``layer``), or ``auto``: a row whose
kind or title type names a legal area goes to the layer, any other row is a site. Sites have one code
namespace; legal areas one per layer. Nothing is overwritten silently: a row that would change a
feature's kind, or (``auto``) give a code of one namespace to the other, is refused unless ``force``;
with ``replace``, what the file no longer holds is retired (never deleted).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import shapely
from sqlmodel import Session

from app import audit
from app.blobs import BlobStore
from app.identity import Actor
from app.settings import Settings
from app.timeutil import utcnow
from geodata import importers, media, placement, queries, spatial, stages
from geodata.errors import (
    BadImportTarget,
    BadLayer,
    EmptySiteFile,
    LegalAreaNotFound,
    NoUsableRows,
    SiteNotFound,
)
from geodata.index import SiteIndexCache, sites_changed
from geodata.models import LegalArea, Site

#: Columns compared to tell an unchanged site from an updated one on re-import.
COMPARED = ("name", "kind", "minerals", "territory", "properties", "geometry", "province", "province_iso")
#: The same for a legal area.
LEGAL_COMPARED = ("name", "kind", "title_type", "holder", "properties", "geometry", "province", "province_iso")
TARGETS = ("auto", "sites", "legal-areas")
DEFAULT_LAYER = "cadastre"
LAYER_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,49}$")
#: What the server reasons with, for a legal area.
LEGAL_KINDS = ("zea", "pe", "pr", "quarry", "zin", "protected", "other")
#: Kinds of the cleaned file (``importers.normalise_kind``) that are legal areas, not sites.
LEGAL_FILE_KINDS = ("zea", "pe", "pr")
#: Source columns naming a title's holder (the first present wins).
HOLDER_KEYS = ("holder", "titulaire", "parties", "owner")


def legal_kind(kind: str | None, title_type: str | None) -> str | None:
    """The legal-area kind a row's type names (``PEPM`` → pe, ``AECP`` → quarry, ``ZIN`` → zin,
    ``Aire protégée`` → protected), else the file kind if it is one (zea, pe, pr), else None (a site)."""
    text = (title_type or "").strip().upper()
    if text:
        if text.startswith("ZEA"):
            return "zea"
        if text in ("ZI", "ZIN") or text.startswith(("ZIN", "ZONE INTERDITE")):
            return "zin"
        if text in ("AP", "PROTECTED", "PROTECTED AREA") or text.startswith(("AIRE PROT", "PARC", "RÉSERVE",
                                                                             "RESERVE", "PROTECTED")):
            return "protected"
        if text.startswith(("AECP", "ARPC", "AECT", "AEPC", "CARRI", "QUARRY")):
            return "quarry"
        if re.match(r"^PE(PM|R)?\b", text) or text == "PE":
            return "pe"
        if re.match(r"^PR\b", text) or text == "PR":
            return "pr"
    return kind if kind in LEGAL_FILE_KINDS else None


def check_layer(layer: str | None) -> str:
    """A layer name: lower-case letters, digits, ``_ . -`` (``cadastre`` when none is given)."""
    value = (layer or DEFAULT_LAYER).strip().lower()
    if not LAYER_PATTERN.match(value):
        raise BadLayer(f"bad layer name {layer!r}: use lower-case letters, digits, _ . - (at most 50), e.g. cadastre")
    return value


def _comparable(stored: tuple) -> tuple:
    """A stored site's COMPARED values without what the server adds itself (stage reasons)."""
    i = COMPARED.index("properties")
    props = {k: v for k, v in (stored[i] or {}).items() if k != "stage_reasons"}
    return (*stored[:i], props, *stored[i + 1:])


def _changed(values: dict[str, Any], known: tuple) -> list[str]:
    """The COMPARED columns whose new value differs from the stored one (empty: unchanged)."""
    stored = _comparable(known[1:1 + len(COMPARED)])
    return [c for c, old in zip(COMPARED, stored, strict=True) if values[c] != old]


def upsert_sites(session: Session, *, read: importers.ReadResult, settings: Settings,
                 blobs: BlobStore | None = None, source: str | None = None, actor: Actor | None = None,
                 progress: Callable[[int], None] | None = None, dry_run: bool = False,
                 cache: SiteIndexCache | None = None, target: str = "auto", layer: str | None = None,
                 force: bool = False, replace: bool = False) -> dict[str, Any]:
    """Create, update, refuse or retire sites and legal areas from a cleaned file; then re-map,
    restage and republish.

    The plan (which row creates, updates, leaves unchanged or is refused, and what ``replace``
    retires) is computed before anything is written; with ``dry_run`` it is returned as it is and
    nothing is written, so a dry run's counts are the ones a real import of the same file into the
    same database reports.

    :param target: ``auto`` (by each row's kind/type), ``sites`` or ``legal-areas``.
    :param layer: the legal areas' layer (``cadastre`` by default); codes are unique within it.
    :param force: accept rows that change a feature's kind or (``auto``) cross from one namespace to the other.
    :param replace: retire the sites (if the file holds sites) and the legal areas of ``layer`` (if it
        holds legal areas) that the file does not hold; a retired feature in the file is restored.
    :returns: a report (``geodata.schemas.ImportReport``): created, updated, unchanged, refused and
        retired features, rows the reader refused (``skipped``) or merged, where rows went (``sites``,
        ``legal_areas``), each outcome in ``items``, problems and warnings.
    """
    if target not in TARGETS:
        raise BadImportTarget(f"unknown import target {target!r}; use one of {', '.join(TARGETS)}")
    layer = check_layer(layer)
    frame = read.frame
    report: dict[str, Any] = {"format": read.format, "rows": read.rows_read, "created": 0, "updated": 0, "unchanged": 0,
                              "refused": 0, "retired": 0, "skipped": len(read.problems), "merged": read.merged,
                              "sites": 0, "legal_areas": 0, "layer": layer, "target": target, "replace": replace,
                              "problems": read.problems, "warnings": list(read.warnings), "dry_run": dry_run,
                              "items": []}
    if len(frame) == 0:
        if read.problems:
            raise NoUsableRows(f"no usable site in the file: {len(read.problems)} rows have problems "
                               f"(first: row {read.problems[0]['row']}: {read.problems[0]['problem']})",
                               details={"problems": read.problems[:100]})
        raise EmptySiteFile("the file holds no sites")
    geoms = np.asarray(frame.geometry.values, dtype=object)
    reps = shapely.point_on_surface(geoms)
    lons, lats = shapely.get_x(reps), shapely.get_y(reps)
    bounds = shapely.bounds(geoms)
    areas = spatial.area_m2(geoms)
    prov_names, prov_isos = importers.provinces_of_geometries(geoms)
    texts = shapely.to_geojson(shapely.set_precision(geoms, 1e-6))
    codes = [str(c) for c in frame["code"]]
    props_all = [dict(p) for p in frame["properties"]]
    # where each row goes
    types: list[str | None] = [p.pop("title_type", None) for p in props_all]
    kinds_legal = [legal_kind(k, t if t is None else str(t)) for k, t in zip(frame["kind"], types, strict=True)]
    if target == "sites":
        to_legal = [False] * len(frame)
    elif target == "legal-areas":
        to_legal = [True] * len(frame)
    else:
        to_legal = [k is not None for k in kinds_legal]
    site_codes = [c for c, legal in zip(codes, to_legal, strict=True) if not legal]
    existing = queries.site_state_by_codes(session, site_codes, (*COMPARED, "status"))
    existing_legal = queries.legal_state(session, layer, (*LEGAL_COMPARED, "status"))
    other_legal = queries.active_legal_codes(session) if target == "auto" else {}
    other_sites = (queries.site_state_by_codes(session, [c for c, legal in zip(codes, to_legal, strict=True) if legal],
                                               ("kind", "status")) if target == "auto" else {})
    now = utcnow()
    src = source[:200] if source else None
    new_sites, site_updates, new_legal, legal_updates = [], [], [], []
    items = report["items"]
    for i, row in enumerate(frame.itertuples(index=False)):
        code = codes[i]
        line = getattr(row, "row", None)
        item: dict[str, Any] = {"row": int(line) if line is not None else i + 1, "code": code, "name": row.name,
                                "changed": [], "target": "legal_area" if to_legal[i] else "site"}
        common = dict(name=row.name, properties=props_all[i], geometry=str(texts[i]),
                      min_lon=float(bounds[i, 0]), min_lat=float(bounds[i, 1]), max_lon=float(bounds[i, 2]),
                      max_lat=float(bounds[i, 3]), area_m2=round(float(areas[i]), 1), province=prov_names[i],
                      province_iso=prov_isos[i], source=src, updated_at=now)
        if to_legal[i]:
            item["layer"] = layer
            kind = kinds_legal[i] or "other"
            title_type = str(types[i])[:50] if types[i] is not None else (row.kind.upper() if row.kind in
                                                                         LEGAL_FILE_KINDS else None)
            holder = next((str(props_all[i][k])[:300] for k in HOLDER_KEYS if props_all[i].get(k) not in (None, "")),
                          None)
            values = dict(kind=kind, title_type=title_type, holder=holder, **common)
            known = existing_legal.get((layer, code))
            crossing = other_sites.get(code)
            if known is None and crossing is not None and crossing[-1] == queries.ACTIVE and not force:
                item.update(action="refused", reason=f"code {code} is a site ({crossing[1]}); importing this row "
                            f"as a legal area of layer {layer} would give a site's code to a title: use --as "
                            "legal-areas if both exist, or --force")
            elif known is None:
                new_legal.append(dict(code=code, layer=layer, created_at=now, status=queries.ACTIVE, **values))
                item["action"] = "created"
            else:
                changed = [c for c, old in zip(LEGAL_COMPARED, known[1:], strict=False) if values[c] != old]
                if "kind" in changed and not force:
                    item.update(action="refused", reason=f"would change the kind of {code} in layer {layer} "
                                f"from {known[1 + LEGAL_COMPARED.index('kind')]} to {kind}: use --force if it is "
                                "the same feature")
                else:
                    if known[-1] != queries.ACTIVE:
                        changed.append("status")
                    if changed:
                        legal_updates.append({"id": known[0], "status": queries.ACTIVE, "retired_at": None, **values})
                    item.update(action="updated" if changed else "unchanged", changed=changed)
            if item["action"] != "refused":
                report["legal_areas"] += 1
        else:
            values = dict(kind=row.kind, minerals=list(row.minerals), territory=row.territory,
                          lon=round(float(lons[i]), 6), lat=round(float(lats[i]), 6), **common)
            known = existing.get(code)
            crossing = other_legal.get(code)
            if known is None and crossing and not force:
                where = ", ".join(f"{k.upper()} in layer {lay}" for lay, k in crossing)
                item.update(action="refused", reason=f"code {code} is a legal area ({where}); importing this row "
                            "as a site would give a title's code to a mine site: use --as sites if both exist, "
                            "or --force")
            elif known is None:
                new_sites.append(dict(code=code, created_at=now, zea_codes=[], permit_codes=[], stage=0,
                                      last_known_stage=0, stage_status="unassessed", red_flag=False, visit_count=0,
                                      status=queries.ACTIVE, **values))
                item["action"] = "created"
            else:
                changed = _changed(values, known)
                if "kind" in changed and not force:
                    item.update(action="refused", reason=f"would change the kind of site {code} from "
                                f"{known[1 + COMPARED.index('kind')]} to {row.kind}: use --force if it is the same site")
                else:
                    if known[-1] != queries.ACTIVE:
                        changed.append("status")
                    if changed:
                        site_updates.append({"id": known[0], "status": queries.ACTIVE, "retired_at": None, **values})
                    item.update(action="updated" if changed else "unchanged", changed=changed)
            if item["action"] != "refused":
                report["sites"] += 1
        report[item["action"]] += 1
        items.append(item)
        if progress and i % 500 == 0:
            progress(i)
    retire_sites, retire_legal = [], []
    if replace:
        kept_sites = {it["code"] for it in items if it["target"] == "site"}
        kept_legal = {it["code"] for it in items if it["target"] == "legal_area"}
        if kept_sites or target == "sites":
            for code, (site_id, status) in sorted(queries.site_status_by_code(session).items()):
                if status == queries.ACTIVE and code not in kept_sites:
                    retire_sites.append(site_id)
                    items.append({"row": None, "code": code, "name": code, "action": "retired", "changed": [],
                                  "target": "site"})
        if kept_legal or target == "legal-areas":
            for (lay, code), known in sorted(existing_legal.items()):
                if known[-1] == queries.ACTIVE and code not in kept_legal:
                    retire_legal.append(known[0])
                    items.append({"row": None, "code": code, "name": known[1 + LEGAL_COMPARED.index("name")],
                                  "action": "retired", "changed": [], "target": "legal_area", "layer": lay})
        report["retired"] = len(retire_sites) + len(retire_legal)
    if dry_run:
        report["would_import"] = report["created"] + report["updated"] + report["unchanged"]
        if progress:
            progress(len(frame))
        return report
    queries.insert_sites(session, new_sites)
    queries.update_rows(session, Site, site_updates)
    queries.insert_rows(session, LegalArea, new_legal)
    queries.update_rows(session, LegalArea, legal_updates)
    if retire_sites:
        queries.update_rows(session, Site, [{"id": i, "status": queries.RETIRED, "retired_at": now} for i in retire_sites])
    if retire_legal:
        queries.update_rows(session, LegalArea, [{"id": i, "status": queries.RETIRED, "retired_at": now}
                                                 for i in retire_legal])
    observations = _observations(session, read, source=src)
    if observations is not None:
        report["observations"] = observations
    session.flush()
    session.expire_all()
    if progress:
        progress(len(frame))
    if new_sites or site_updates or new_legal or legal_updates or retire_sites or retire_legal:
        after_sites_changed(session, settings=settings, blobs=blobs, cache=cache)
    audit.record(session, "sites.import", actor=actor, object_type="site", object_id=None,
                 created=report["created"], updated=report["updated"], unchanged=report["unchanged"],
                 refused=report["refused"], retired=report["retired"], skipped=report["skipped"],
                 merged=report["merged"], sites=report["sites"], legal_areas=report["legal_areas"], layer=layer,
                 target=target, replace=replace, force=force, source=source)
    return report


def _observations(session: Session, read: importers.ReadResult, *, source: str | None) -> int | None:
    """Store the older rows of a point register (``read.observations``, when the reader kept them) as
    observations of their sites; a re-import of the same source replaces them. Returns how many."""
    frame = getattr(read, "observations", None)
    if frame is None:
        return None
    ids = queries.site_state_by_codes(session, sorted({str(c) for c in frame["code"]}), ())
    by_code = {code: state[0] for code, state in ids.items()}
    rows = []
    for code, on, props in zip(frame["code"], frame["observed_on"], frame["properties"], strict=True):
        site_id = by_code.get(str(code))
        if site_id is None:
            continue
        observed = None if on is None or pd.isna(on) else on
        if isinstance(observed, (datetime, pd.Timestamp)):
            observed = observed.date()
        rows.append({"site_id": site_id, "observed_on": observed, "source": source,
                     "properties": {str(k): v for k, v in dict(props or {}).items()}, "created_at": utcnow()})
    queries.replace_observations(session, by_code, rows, source)
    return len(rows)


def import_file(session: Session, *, path: Path, settings: Settings, filename: str | None = None,
                mapping: str | dict[str, str] | None = None, kind: str | None = None, crs: str | None = None,
                default_radius_m: float | None = 50.0, blobs: BlobStore | None = None,
                actor: Actor | None = None, progress: Callable[[int], None] | None = None,
                dry_run: bool = False, cache: SiteIndexCache | None = None, target: str = "auto",
                layer: str | None = None, force: bool = False, replace: bool = False,
                latest_by: str | None = None, history: bool = False) -> dict[str, Any]:
    """Read a site file (any supported format) and import it (``upsert_sites``). See ``importers.read_sites``."""
    if target not in TARGETS:
        raise BadImportTarget(f"unknown import target {target!r}; use one of {', '.join(TARGETS)}")
    check_layer(layer)
    read = importers.read_sites(path, filename=filename, mapping=with_title_type(mapping, target), kind=kind, crs=crs,
                                default_radius_m=default_radius_m, latest_by=latest_by, history=history)
    return upsert_sites(session, read=read, settings=settings, blobs=blobs, source=filename or Path(path).name,
                        actor=actor, progress=progress, dry_run=dry_run, cache=cache, target=target, layer=layer,
                        force=force, replace=replace)


def with_title_type(mapping: str | dict[str, str] | None, target: str) -> str | dict[str, str] | None:
    """The mapping plus ``title_type`` = the kind column, so a legal area keeps its type as the source
    writes it (``PEPM``, ``AECP``: the cleaned kind only says pe, pr, zea or other). A preset naming a kind
    column (``cami``) gets it too (its columns are then all required); other presets are left as they are."""
    if target == "sites":
        return mapping
    if isinstance(mapping, str) and mapping.strip().lower() in importers.PRESETS:
        preset = importers.PRESETS[mapping.strip().lower()]
        return {**preset, "title_type": preset["kind"]} if "kind" in preset else mapping
    parsed = importers.parse_mapping(mapping)
    if "title_type" not in parsed:
        parsed["title_type"] = parsed.get("kind", "type")
    return parsed


def after_sites_changed(session: Session, *, settings: Settings, blobs: BlobStore | None,
                        cache: SiteIndexCache | None = None) -> dict[str, int]:
    """Bump the version, derive legal overlaps, re-map every submission, restage, republish media."""
    sites_changed(session)
    placement.derive_legal_codes(session, cache)
    remapped = placement.remap_all(session, settings=settings, cache=cache)
    staged = stages.recompute_stages(session)
    published = 0
    if blobs is not None:
        published = media.publish(session, blobs=blobs)
    return {"remapped": remapped, "staged": staged, "media_versions": published}


# -- retiring and restoring one feature --------------------------------------------------------------


def set_status(session: Session, *, code: str, retired: bool, settings: Settings, layer: str | None = None,
               blobs: BlobStore | None = None, actor: Actor | None = None,
               cache: SiteIndexCache | None = None) -> dict[str, Any]:
    """Retire (or restore) the site ``code`` -- or, with ``layer``, that layer's legal area ``code``.

    A retired site leaves the tablets' site list, the statistics and placement (new visits no longer
    map onto it); its visits, stage history and page stay. A retired legal area leaves the map and the
    sites' legal context. Nothing is deleted; restoring brings it all back. Audited.

    :returns: ``{"code", "layer", "status", "changed"}`` (``changed`` False when it already was so).
    """
    status = queries.RETIRED if retired else queries.ACTIVE
    feature: Site | LegalArea | None
    if layer is None:
        feature = queries.site_by_code(session, code)
        if feature is None:
            raise SiteNotFound(f"no site with code {code!r}")
    else:
        feature = queries.legal_area(session, check_layer(layer), code)
        if feature is None:
            raise LegalAreaNotFound(f"no legal area {code!r} in layer {layer!r}")
    changed = feature.status != status
    if changed:
        feature.status = status
        feature.retired_at = utcnow() if retired else None
        feature.updated_at = utcnow()
        session.add(feature)
        session.flush()
        after_sites_changed(session, settings=settings, blobs=blobs, cache=cache)
        audit.record(session, "sites.retire" if retired else "sites.restore", actor=actor,
                     object_type="site" if layer is None else "legal_area", object_id=str(feature.id), code=code,
                     layer=layer)
    return {"code": code, "layer": layer, "status": status, "changed": changed}
