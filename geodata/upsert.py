"""Site import: upsert by code from a cleaned file, then re-map, restage and republish.

``geodata.importers`` reads and cleans a file (no database); this module stores its sites and runs
what a change of sites implies (``after_sites_changed``): bump the sites version, derive legal
overlaps, re-map every submission, restage, regenerate ``sites.csv``/``sites.geojson``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlmodel import Session

from app import audit
from app.blobs import BlobStore
from app.identity import Actor
from app.settings import Settings
from app.timeutil import utcnow
from geodata import importers, media, placement, queries, spatial, stages
from geodata.errors import EmptySiteFile, NoUsableRows
from geodata.index import SiteIndexCache, sites_changed
from geodata.models import Site

#: Columns compared to tell an unchanged site from an updated one on re-import.
COMPARED = ("name", "kind", "minerals", "territory", "properties", "geometry", "province", "province_iso")


def _comparable(stored: tuple) -> tuple:
    """A stored site's COMPARED values without what the server adds itself (stage reasons)."""
    i = COMPARED.index("properties")
    props = {k: v for k, v in (stored[i] or {}).items() if k != "stage_reasons"}
    return (*stored[:i], props, *stored[i + 1:])


def _changed(values: dict[str, Any], known: tuple) -> list[str]:
    """The COMPARED columns whose new value differs from the stored one (empty: unchanged)."""
    stored = _comparable(known[1:])
    return [c for c, old in zip(COMPARED, stored, strict=True) if values[c] != old]


def upsert_sites(session: Session, *, read: importers.ReadResult, settings: Settings,
                 blobs: BlobStore | None = None, source: str | None = None, actor: Actor | None = None,
                 progress: Callable[[int], None] | None = None, dry_run: bool = False,
                 cache: SiteIndexCache | None = None) -> dict[str, Any]:
    """Insert or update sites by code from a cleaned file; then re-map, restage and republish.

    The plan (which row creates, updates or leaves a site unchanged) is computed before anything
    is written; with ``dry_run`` it is returned as it is and nothing is written, so a dry run's
    counts are the ones a real import of the same file into the same database reports.

    :returns: a report (``geodata.schemas.ImportReport``): created, updated, unchanged and refused
        (``skipped``) rows, rows merged into an earlier one of the same code (``merged``: another
        polygon of a multi-part site), each row's outcome in ``items``, problems and warnings.
    """
    frame = read.frame
    report: dict[str, Any] = {"format": read.format, "rows": read.rows_read, "created": 0, "updated": 0, "unchanged": 0,
                              "skipped": len(read.problems), "merged": read.merged, "problems": read.problems, "warnings": read.warnings,
                              "dry_run": dry_run, "items": []}
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
    codes = list(frame["code"])
    existing = queries.site_state_by_codes(session, codes, COMPARED)
    now = utcnow()
    new_rows = []
    updates = []
    items = report["items"]
    for i, row in enumerate(frame.itertuples(index=False)):
        values = dict(
            name=row.name, kind=row.kind, minerals=list(row.minerals), territory=row.territory,
            properties=dict(row.properties), geometry=str(texts[i]),
            min_lon=float(bounds[i, 0]), min_lat=float(bounds[i, 1]), max_lon=float(bounds[i, 2]),
            max_lat=float(bounds[i, 3]), lon=round(float(lons[i]), 6), lat=round(float(lats[i]), 6),
            area_m2=round(float(areas[i]), 1), province=prov_names[i], province_iso=prov_isos[i],
            source=source[:200] if source else None, updated_at=now,
        )
        line = getattr(row, "row", None)
        item = {"row": int(line) if line is not None else i + 1, "code": row.code, "name": row.name,
                "changed": []}
        known = existing.get(row.code)
        if known is None:
            new_rows.append(dict(code=row.code, created_at=now, zea_codes=[], permit_codes=[], stage=0,
                                 last_known_stage=0, stage_status="unassessed", red_flag=False, visit_count=0,
                                 **values))
            item["action"] = "created"
        elif not (changed := _changed(values, known)):
            item["action"] = "unchanged"
        else:
            updates.append({"id": known[0], **values})
            item.update(action="updated", changed=changed)
        report[item["action"]] += 1
        items.append(item)
        if progress and i % 500 == 0:
            progress(i)
    if dry_run:
        report["would_import"] = len(frame)
        if progress:
            progress(len(frame))
        return report
    queries.insert_sites(session, new_rows)
    queries.update_rows(session, Site, updates)
    session.flush()
    session.expire_all()
    if progress:
        progress(len(frame))
    if new_rows or updates:
        after_sites_changed(session, settings=settings, blobs=blobs, cache=cache)
    audit.record(session, "sites.import", actor=actor, object_type="site", object_id=None,
                 created=report["created"], updated=report["updated"], unchanged=report["unchanged"],
                 skipped=report["skipped"], merged=report["merged"], source=source)
    return report


def import_file(session: Session, *, path: Path, settings: Settings, filename: str | None = None,
                mapping: str | dict[str, str] | None = None, kind: str | None = None, crs: str | None = None,
                default_radius_m: float | None = 50.0, blobs: BlobStore | None = None,
                actor: Actor | None = None, progress: Callable[[int], None] | None = None,
                dry_run: bool = False, cache: SiteIndexCache | None = None) -> dict[str, Any]:
    """Read a site file (any supported format) and upsert its sites. See ``importers.read_sites``."""
    read = importers.read_sites(path, filename=filename, mapping=mapping, kind=kind, crs=crs,
                                default_radius_m=default_radius_m)
    return upsert_sites(session, read=read, settings=settings, blobs=blobs, source=filename or Path(path).name,
                        actor=actor, progress=progress, dry_run=dry_run, cache=cache)


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
