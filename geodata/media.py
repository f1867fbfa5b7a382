"""The published site list as form media: ``sites.csv`` and ``sites.geojson``.

ODK Collect reads ``select_one_from_file sites.geojson`` (appearance ``map``) from a
FeatureCollection whose features carry ``id`` (the choice value, our site code) and ``title``
(the label) properties; ``sites.csv`` has ``name`` (value) and ``label`` columns plus extra
columns for offline search. Only the site list goes to tablets (no stages, no visit data), so
the files change only when sites change and tablets re-download them only then.
"""

from __future__ import annotations

import csv
import io
import json

import shapely
from sqlmodel import Session

from app import audit
from app.blobs import BlobStore
from app.identity import Actor
from forms.service import set_generated_media
from geodata import queries

CSV_NAME = "sites.csv"
GEOJSON_NAME = "sites.geojson"
CSV_COLUMNS = ["name", "label", "province", "province_iso", "territory", "kind", "lon", "lat"]
CSV_TYPE = "text/csv"
GEOJSON_TYPE = "application/geo+json"
GENERATED_FROM = "sites"


def sites_csv(session: Session) -> bytes:
    """One row per site: name (= code, the choice value), label, province, lon/lat."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in queries.mappable_sites(session):
        writer.writerow([s.code, s.name, s.province or "", s.province_iso or "", s.territory or "", s.kind,
                         "" if s.lon is None else f"{s.lon:.6f}", "" if s.lat is None else f"{s.lat:.6f}"])
    return buf.getvalue().encode("utf-8")


def _collect_geometry(text: str) -> dict:
    """Collect draws Point, LineString and Polygon; a MultiPolygon is shown as its largest part."""
    geom = shapely.from_geojson(text)
    if geom.geom_type == "MultiPolygon":
        geom = max(geom.geoms, key=lambda g: g.area)
    return json.loads(shapely.to_geojson(geom))


def sites_geojson(session: Session) -> bytes:
    """FeatureCollection for ``select_one_from_file`` with the ``map`` appearance."""
    features = [
        {"type": "Feature", "id": s.code, "geometry": _collect_geometry(s.geometry),
         "properties": {"id": s.code, "title": s.name, "province": s.province or "", "kind": s.kind}}
        for s in queries.mappable_sites(session)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def publish(session: Session, *, blobs: BlobStore) -> int:
    """Regenerate both files on every form version that references them; returns versions changed."""
    changed = set_generated_media(session, blobs=blobs, filename=CSV_NAME, content=sites_csv(session),
                                  media_type=CSV_TYPE, generated_from=GENERATED_FROM)
    changed += set_generated_media(session, blobs=blobs, filename=GEOJSON_NAME, content=sites_geojson(session),
                                   media_type=GEOJSON_TYPE, generated_from=GENERATED_FROM)
    return changed


def publish_media(session: Session, *, blobs: BlobStore, actor: Actor | None = None) -> dict[str, int]:
    """Regenerate the site list on demand (``asmfield sites publish-media``, ``POST /api/v1/sites/media``):
    e.g. after restoring a backup, or for forms uploaded before generated media were stored at upload."""
    changed = publish(session, blobs=blobs)
    sites = len(queries.mappable_sites(session))
    audit.record(session, "sites.publish_media", actor=actor, object_type="site", object_id=None,
                 versions_changed=changed, sites=sites)
    return {"versions_changed": changed, "sites": sites}
