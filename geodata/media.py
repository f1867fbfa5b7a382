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
import re

import numpy as np
import shapely
from sqlmodel import Session, select

from app import audit
from app.blobs import BlobStore
from app.identity import Actor
from forms.service import set_generated_media
from geodata import queries
from geodata.models import Site

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
    rows = session.exec(select(Site.code, Site.name, Site.province, Site.province_iso, Site.territory, Site.kind,
                               Site.lon, Site.lat).where(queries.MAPPABLE).order_by(Site.code))
    for code, name, province, province_iso, territory, kind, lon, lat in rows:
        writer.writerow([code, name, province or "", province_iso or "", territory or "", kind,
                         "" if lon is None else f"{lon:.6f}", "" if lat is None else f"{lat:.6f}"])
    return buf.getvalue().encode("utf-8")


def _collect_geometries(texts: list[str]) -> list[str]:
    """The stored GeoJSON geometries as Collect draws them (Point, LineString, Polygon): a MultiPolygon
    becomes its largest part; any other geometry is the stored text itself, never parsed again."""
    multi = [i for i, text in enumerate(texts) if "MultiPolygon" in text]
    if not multi:
        return texts
    geoms = shapely.from_geojson(np.array([texts[i] for i in multi], dtype=object))
    keep = shapely.get_type_id(geoms) == shapely.GeometryType.MULTIPOLYGON
    multi, geoms = [i for i, k in zip(multi, keep, strict=True) if k], geoms[keep]
    parts, owner = shapely.get_parts(geoms, return_index=True)
    order = np.lexsort((-shapely.area(parts), owner))  # by site, the largest part first (ties: the first part)
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    out = list(texts)
    for i, text in zip(multi, shapely.to_geojson(parts[first]), strict=True):
        out[i] = str(text)
    return out


#: a coordinate GEOS wrote with 17 significant digits (``25.951294999999998``), and a quick test for one
LONG_NUMBER = re.compile(r"-?\d+\.\d{12,}(?:[eE][-+]?\d+)?")
LONG_DECIMALS = re.compile(r"\.\d{12}")


def _shortest(text: str) -> str:
    """``text`` with its long coordinates written as Python writes them (``25.951295``, the same number):
    the file stays byte for byte what it was when each geometry was parsed and written with ``json``."""
    if LONG_DECIMALS.search(text) is None:  # most geometries: a scan for a dot and 12 digits is much faster
        return text
    return LONG_NUMBER.sub(lambda m: repr(float(m.group(0))), text)


def sites_geojson(session: Session) -> bytes:
    """FeatureCollection for ``select_one_from_file`` with the ``map`` appearance.

    Written as text around each site's stored geometry (GeoJSON already): parsing 20,000 geometries
    to write them back took seconds of every import."""
    rows = session.exec(select(Site.code, Site.name, Site.province, Site.kind, Site.geometry)
                        .where(queries.MAPPABLE).order_by(Site.code)).all()
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    features = [f'{{"type":"Feature","id":{dumps(code)},"geometry":{_shortest(geometry)},"properties":'
                f'{dumps({"id": code, "title": name, "province": province or "", "kind": kind})}}}'
                for (code, name, province, kind), geometry in zip(
                    ((r[0], r[1], r[2], r[3]) for r in rows), _collect_geometries([r[4] for r in rows]), strict=True)]
    return ('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}").encode("utf-8")


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
