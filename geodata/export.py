"""Export of every site (active and retired, with ``status``) and its stage columns as GeoJSON or GeoPackage."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely
from sqlmodel import Session

from app.timeutil import utcnow
from geodata import queries
from geodata.errors import BadExportFormat
from geodata.stages import site_stage

FORMATS = ("geojson", "gpkg")
#: Media types of the exported files (declared by the export routes).
MEDIA_TYPES = {"geojson": "application/geo+json", "gpkg": "application/geopackage+sqlite3"}


def export(session: Session, *, fmt: str, path: Path) -> Path:
    """Write every site (with stage columns) as GeoJSON or GeoPackage to ``path``."""
    if fmt not in FORMATS:
        raise BadExportFormat(f"unknown export format {fmt!r}; use geojson or gpkg")
    today = utcnow().date()
    rows = []
    for site in queries.all_sites(session):
        stage, status = site_stage(site, today)
        rows.append({"code": site.code, "name": site.name, "kind": site.kind, "province": site.province,
                     "province_iso": site.province_iso, "territory": site.territory,
                     "minerals": ",".join(site.minerals or []), "stage": stage,
                     "stage_status": status, "red_flag": site.red_flag,
                     "last_visit": site.last_visit_on.isoformat() if site.last_visit_on else None,
                     "visit_count": site.visit_count, "zea_codes": ",".join(site.zea_codes or []),
                     "permit_codes": ",".join(site.permit_codes or []), "source": site.source,
                     "status": site.status,
                     "geometry": shapely.from_geojson(site.geometry)})
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326) if rows else gpd.GeoDataFrame(
        {"code": []}, geometry=[], crs=4326)
    if fmt == "geojson":
        frame.to_file(path, driver="GeoJSON")
    else:
        frame.to_file(path, driver="GPKG", layer="sites")
    return path
