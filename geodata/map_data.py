"""What the map (``/map``) draws, kept lean enough for 10,000 sites on a slow link.

* ``provinces_geojson``: the bundled DRC provinces, simplified once per process (the base layer
  that needs no network).
* ``site_layer``: at low zoom one point per site as compact arrays (code, name, stage, red flag,
  lon, lat); from ``POLYGON_ZOOM`` on, the polygons inside the view, simplified to about a
  pixel of that zoom and clipped to the view. Only code, name, stage and the flag travel.
* ``legal_layer``: the active legal areas (titles, ZEA, forbidden zones, quarry authorisations,
  protected areas) of some kinds, simplified for the zoom (cached per sites version). They never
  capture visits: they are the sites' legal context.
* ``visit_points``: visits of the filtered sites, for clustering (monitors: their own only, as
  on the site page).
* ``matching_site_ids``: the same filters for ``/api/v1/sites/stats``, so the legend counts and
  the statistics agree by construction.

Filters (``MapFilters``): province (name or ISO code), effective stage (the staleness rule of
``geodata.stages``), mineral, red flag, and a date range on the last visit (sites) and on the
visit date (visits). The SQL of the map's lean rows lives here rather than in ``queries``
because no other module reads these columns this way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Text, cast, or_, select
from sqlmodel import Session

from app.identity import Actor
from app.timeutil import utcnow
from geodata import importers, queries, spatial
from geodata.index import cache_of
from geodata.models import Site
from geodata.stages import effective_stage, to_visit

#: From this zoom on (about 38 m per pixel) sites are drawn as polygons of the visible area.
POLYGON_ZOOM = 12
#: More polygons than this in one view and points are sent instead.
MAX_POLYGONS = 3000
#: Metres per pixel at zoom 0 near the equator (256-pixel tiles).
M_PER_PIXEL_Z0 = 156_543.0
#: Decimal places of coordinates sent to the map (5: about a metre).
PRECISION = 5

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class MapFilters:
    """The map's filters (every one optional); the same ones narrow ``/api/v1/sites/stats``."""

    province: str | None = None
    stage: int | None = None
    mineral: str | None = None
    flag: bool = False
    date_from: date | None = None
    date_to: date | None = None

    @property
    def any(self) -> bool:
        return any((self.province, self.stage is not None, self.mineral, self.flag, self.date_from, self.date_to))


# -- sites -------------------------------------------------------------------------------------


def _site_rows(session: Session, filters: MapFilters, *, columns: tuple[str, ...] = (),
               bbox: tuple[float, float, float, float] | None = None) -> list[Any]:
    """Mappable sites passing the SQL part of the filters, with what the rest of the filters need."""
    cols = [Site.id, Site.code, Site.name, Site.stage, Site.stage_status, Site.last_visit_on, Site.red_flag,
            Site.lon, Site.lat, cast(Site.minerals, Text).label("minerals"), *(getattr(Site, c) for c in columns)]
    stmt = select(*cols).where(queries.MAPPABLE)
    if filters.province:
        stmt = stmt.where(or_(Site.province == filters.province, Site.province_iso == filters.province))
    if filters.flag:
        stmt = stmt.where(Site.red_flag == True)  # noqa: E712
    if filters.date_from:
        stmt = stmt.where(Site.last_visit_on >= filters.date_from)
    if filters.date_to:
        stmt = stmt.where(Site.last_visit_on <= filters.date_to)
    if filters.mineral:  # narrows in SQL; the exact list membership is checked in ``_matching``
        stmt = stmt.where(cast(Site.minerals, Text).contains(filters.mineral))
    if bbox:
        min_lon, min_lat, max_lon, max_lat = bbox
        stmt = stmt.where(Site.max_lon >= min_lon, Site.min_lon <= max_lon, Site.max_lat >= min_lat,
                          Site.min_lat <= max_lat)
    return list(session.execute(stmt.order_by(Site.code)))


def _matching(rows: list[Any], filters: MapFilters, today: date) -> list[tuple[Any, int]]:
    """(row, effective stage) of the rows passing the stage and mineral filters."""
    out = []
    for r in rows:
        stage, _status = effective_stage(r.stage, r.stage_status, r.last_visit_on, today)
        if filters.stage is not None and stage != filters.stage:
            continue
        if filters.mineral and filters.mineral not in json.loads(r.minerals or "[]"):
            continue
        out.append((r, stage))
    return out


def matching_site_ids(session: Session, filters: MapFilters, *, today: date | None = None) -> set[int]:
    """Ids of the mappable sites passing ``filters`` (for ``read.stats``)."""
    today = today or utcnow().date()
    return {r.id for r, _ in _matching(_site_rows(session, filters), filters, today)}


def tolerance_m(zoom: int) -> float:
    """About one screen pixel at ``zoom``, in metres (what simplification may drop unseen)."""
    return M_PER_PIXEL_Z0 / 2 ** max(0, min(zoom, 22))


def site_layer(session: Session, filters: MapFilters, *, zoom: int,
               bbox: tuple[float, float, float, float] | None = None, today: date | None = None) -> bytes:
    """The sites of the map view as JSON bytes.

    Below ``POLYGON_ZOOM`` (or without a bbox, or with too many sites in view)::

        {"mode": "points", "fields": ["code", "name", "stage", "flag", "lon", "lat"],
         "sites": [["KOL-001", "Site A", 3, 0, 25.47123, -10.71234], ...]}

    From ``POLYGON_ZOOM`` on, a GeoJSON FeatureCollection (plus ``"mode": "polygons"``) of the
    sites in ``bbox``, simplified to ``tolerance_m(zoom)`` and clipped to the bbox grown by a
    quarter on each side, with properties code, name, stage, flag.

    Points bodies are kept in the app's site cache (``SiteIndexCache.site_list``) under a key of
    everything they depend on, as ``read.feature_collection`` does: a repeat view costs two small queries.
    """
    today = today or utcnow().date()
    polygons = zoom >= POLYGON_ZOOM and bbox is not None
    cache = cache_of(session)
    # the points body depends on the sites, their stages, the day (staleness) and the filters only
    key = ("map-points", queries.counter(session, queries.SITES_VERSION), *queries.stage_fingerprint(session), today,
           filters)
    if not polygons and (body := cache.site_list(key)) is not None:
        return body
    rows = _matching(_site_rows(session, filters, columns=("geometry",) if polygons else (),
                                bbox=bbox if polygons else None), filters, today)
    if polygons and len(rows) <= MAX_POLYGONS:
        return _polygons(rows, zoom, bbox)  # type: ignore[arg-type]
    parts = []
    for r, stage in rows:
        if r.lon is None or r.lat is None:
            continue
        parts.append(f"[{_dumps(r.code)},{_dumps(r.name)},{stage},{1 if r.red_flag else 0},"
                     f"{round(r.lon, PRECISION)},{round(r.lat, PRECISION)}]")
    body = ('{"mode":"points","fields":["code","name","stage","flag","lon","lat"],"sites":['
            + ",".join(parts) + "]}").encode("utf-8")
    cache.keep_site_list(key, body)
    return body


def _polygons(rows: list[tuple[Any, int]], zoom: int, bbox: tuple[float, float, float, float]) -> bytes:
    min_lon, min_lat, max_lon, max_lat = bbox
    pad_x, pad_y = (max_lon - min_lon) / 4, (max_lat - min_lat) / 4
    geoms = shapely.from_geojson([r.geometry for r, _ in rows]) if rows else np.empty(0, dtype=object)
    geoms = shapely.simplify(geoms, tolerance_m(zoom) / spatial.M_PER_DEG, preserve_topology=True)
    geoms = shapely.clip_by_rect(geoms, min_lon - pad_x, min_lat - pad_y, max_lon + pad_x, max_lat + pad_y)
    geoms = shapely.set_precision(geoms, 10 ** -PRECISION)
    parts = []
    for (r, stage), geom in zip(rows, geoms, strict=True):
        if geom is None or shapely.is_empty(geom):
            continue
        props = f'{{"code":{_dumps(r.code)},"name":{_dumps(r.name)},"stage":{stage},"flag":{1 if r.red_flag else 0}}}'
        parts.append(f'{{"type":"Feature","geometry":{shapely.to_geojson(geom)},"properties":{props}}}')
    return ('{"mode":"polygons","type":"FeatureCollection","features":[' + ",".join(parts) + "]}").encode("utf-8")


# -- legal layers ------------------------------------------------------------------------------


#: The map's legal layers: the kinds each one draws (``/api/v1/map/legal/{layer}``).
LEGAL_LAYERS: dict[str, tuple[str, ...]] = {"zea": ("zea",), "pe": ("pe",), "pr": ("pr",), "quarry": ("quarry",),
                                            "zin": ("zin", "protected")}


def legal_layer(session: Session, *, kinds: tuple[str, ...] | None = None, zoom: int,
                bbox: tuple[float, float, float, float] | None = None, layer: str | None = None) -> bytes:
    """Active legal areas of ``kinds`` (all when None; of one ``layer`` when given) as GeoJSON bytes
    (properties layer, code, name, kind, title_type, holder), simplified to about a pixel of ``zoom``
    (computed once per sites version, tolerance and app)."""
    cache = cache_of(session)
    tolerance = round(tolerance_m(zoom), 1)
    simplified = cache.simplified(queries.counter(session, queries.SITES_VERSION), tolerance)
    rows = queries.legal_layer_rows(session, kinds=kinds, layer=layer, bbox=bbox)
    keys = [f"legal:{r.id}" for r in rows]  # a site and a title may share a code: never the same key
    missing = [(k, r) for k, r in zip(keys, rows, strict=True) if k not in simplified]
    if missing:
        geoms = shapely.simplify(shapely.from_geojson([r.geometry for _, r in missing]),
                                 tolerance / spatial.M_PER_DEG, preserve_topology=True)
        for (k, _), text in zip(missing, shapely.to_geojson(shapely.set_precision(geoms, 10 ** -PRECISION)),
                                strict=True):
            simplified[k] = str(text)
    parts = [f'{{"type":"Feature","id":{_dumps(r.layer + ":" + r.code)},"geometry":{simplified[k]},"properties":'
             f'{{"layer":{_dumps(r.layer)},"code":{_dumps(r.code)},"name":{_dumps(r.name)},"kind":{_dumps(r.kind)},'
             f'"title_type":{_dumps(r.title_type)},"holder":{_dumps(r.holder)}}}}}' for k, r in zip(keys, rows, strict=True)]
    return ('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}").encode("utf-8")


# -- visits ------------------------------------------------------------------------------------


def visit_points(session: Session, *, actor: Actor, filters: MapFilters, today: date | None = None) -> bytes:
    """Located visits of the filtered sites as ``{"fields": [...], "visits": [[lon, lat, site, date,
    instance_id], ...]}``; a monitor gets only their own visits (as on the site page)."""
    today = today or utcnow().date()
    sites = {r.id: r.code for r, _ in _matching(_site_rows(session, filters), filters, today)}
    own = actor.user.id if actor.role == "monitor" else None
    parts = []
    for row in queries.visits_of(session, list(sites), user_id=own):
        if row.lon is None or row.lat is None:
            continue
        on = to_visit(row).on
        if (filters.date_from and on < filters.date_from) or (filters.date_to and on > filters.date_to):
            continue
        parts.append(f"[{round(row.lon, PRECISION)},{round(row.lat, PRECISION)},{_dumps(sites[row.site_id])},"
                     f'"{on.isoformat()}",{_dumps(row.instance_id)}]')
    return ('{"fields":["lon","lat","site","date","instance_id"],"visits":[' + ",".join(parts) + "]}").encode()


# -- provinces and filter choices --------------------------------------------------------------


@cache
def provinces_geojson(tolerance_deg: float = 0.01) -> bytes:
    """The bundled DRC provinces (geoBoundaries, ODbL) simplified to ``tolerance_deg`` (about 1 km),
    coordinates to 3 decimals; properties name (the app's French names) and iso."""
    data = json.loads(importers.PROVINCES_FILE.read_text(encoding="utf-8"))
    features = data["features"]
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    geoms = shapely.set_precision(shapely.simplify(geoms, tolerance_deg, preserve_topology=True), 1e-3)
    parts = []
    for feature, geom in zip(features, shapely.to_geojson(geoms), strict=True):
        props = feature["properties"]
        name = importers.PROVINCE_NAMES.get(props["shapeName"], props["shapeName"])
        parts.append(f'{{"type":"Feature","geometry":{geom},"properties":'
                     f'{{"name":{_dumps(name)},"iso":{_dumps(props["shapeISO"])}}}}}')
    return ('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}").encode("utf-8")


@cache
def province_names() -> list[tuple[str, str]]:
    """(ISO code, name) of the 26 provinces, by name."""
    features = json.loads(provinces_geojson())["features"]
    return sorted(((f["properties"]["iso"], f["properties"]["name"]) for f in features), key=lambda p: p[1])


def mineral_choices(session: Session) -> list[str]:
    """The minerals named by mappable sites, sorted."""
    found: set[str] = set()
    stmt = select(cast(Site.minerals, Text)).where(queries.MAPPABLE).distinct()
    for (text,) in session.execute(stmt):
        found.update(m for m in json.loads(text or "[]") if isinstance(m, str))
    return sorted(found)

