"""Geo exports (issue 15): GeoJSON and GeoPackage of a form's submissions, for QGIS and geopandas.

One feature per submission (the main table's rows, ``rows.iter_rows``): its geometry is the answer
of one geo field outside repeats — the form's first geopoint, geotrace or geoshape, or the one the
``geometry_field`` option names (path or name) — and its properties are the main table's columns
(the export's headers and options, the mapped site's code, name and stage, the submission's meta),
less the raw text of a geotrace/geoshape already drawn as the geometry. A submission without a usable
answer gets a null geometry (GeoJSON) / an empty one (GeoPackage): it is still a row.

* GeoJSON (RFC 7946, WGS 84 longitude/latitude) is written as it is read: the FeatureCollection's
  head at once, then a feature per line.
* GeoPackage is written with pyogrio in chunks (each chunk appended to its layers) into a temporary
  file, then copied to the output: memory stays flat. It has one layer per geo field (or only the
  ``geometry_field`` one), named after the field and typed Point, LineString or Polygon: the first
  holds every submission, the others those that answered their field. Columns are typed from the
  form (integers, decimals, text), the same for every chunk.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import shapely
from pyogrio import get_gdal_config_option, set_gdal_config_options
from pyogrio.raw import write as ogr_write
from sqlmodel import Session

from reports.errors import ExportBadParam
from reports.exports import rows as rows_
from reports.exports.rows import GEO_TYPES, Column, ExportPlan
from sync.submission_xml import parse_geopoint

Progress = Callable[[int], None]
GEOJSON_MEDIA_TYPE = "application/geo+json"
GPKG_MEDIA_TYPE = "application/geopackage+sqlite3"
#: Features per GeoPackage write (one GDAL transaction each).
GPKG_CHUNK = 2_000
#: The layer's geometry type per XForm geo type.
GEOMETRY_TYPES = {"geopoint": "Point", "geotrace": "LineString", "geoshape": "Polygon"}
WGS84 = 'GEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,298.257223563]],' \
        'CS[ellipsoidal,2],AXIS["latitude",north],AXIS["longitude",east],UNIT["degree",0.0174532925199433],' \
        'ID["EPSG",4326]]'
#: Column types written as numbers (the rest as text).
_INTEGER_TYPES = ("int", "boolean")
_DECIMAL_TYPES = ("decimal",)
_INTEGER_META = ("_site_stage", "_index")


# -- the geometry ----------------------------------------------------------------------------


def geometry_field(plan: ExportPlan) -> dict[str, Any]:
    """The geo field an export draws: ``geometry_field`` (a path or a name), else the first.

    :raises ExportBadParam: the form has no geo field outside repeats this caller may export, or
        ``geometry_field`` names none of them.
    """
    candidates = [f for f in plan.fields if f.get("kind") == "field" and f.get("type") in GEO_TYPES
                  and f.get("repeat") is None]
    wanted = plan.spec.options.geometry_field
    if wanted:
        for f in candidates:
            if wanted in (f["path"], f["name"]):
                return f
        names = ", ".join(f["name"] for f in candidates) or "none"
        raise ExportBadParam(f"geometry_field: {wanted!r} is not a geopoint, geotrace or geoshape question of form "
                             f"{plan.xml_form_id!r} outside repeats (those: {names})",
                             details={"field": "geometry_field"})
    if not candidates:
        raise ExportBadParam(f"format: form {plan.xml_form_id!r} has no geopoint, geotrace or geoshape question "
                             "outside repeats (that you may export) to draw; export it as CSV or XLSX",
                             details={"field": "format"})
    return candidates[0]


def _points(text: Any) -> list[tuple[float, float]] | None:
    """(lon, lat) of each vertex of a geotrace/geoshape answer; None when one is malformed."""
    if not isinstance(text, str):
        return None
    out = []
    for part in text.split(";"):
        if not part.strip():
            continue
        point = parse_geopoint(part)
        if point is None:
            return None
        out.append((point[1], point[0]))
    return out


class _Geometry:
    """Reads a row's geometry from the main table's columns of one geo field."""

    def __init__(self, plan: ExportPlan, geo: dict[str, Any]) -> None:
        self.type = geo["type"]
        columns = plan.main.columns
        at = {(c.path, c.part): i for i, c in enumerate(columns)}
        if self.type == "geopoint":
            self.lat, self.lon = at[(geo["path"], "latitude")], at[(geo["path"], "longitude")]
            self.hidden: set[int] = set()
        else:
            self.raw = at[(geo["path"], None)]
            self.hidden = {self.raw}

    def shapes(self, rows: list[list[Any]]) -> np.ndarray:
        """The shapely geometries of a chunk of rows (None where there is none)."""
        out = np.full(len(rows), None, dtype=object)
        if self.type == "geopoint":
            lon = np.array([np.nan if r[self.lon] is None else r[self.lon] for r in rows], dtype=np.float64)
            lat = np.array([np.nan if r[self.lat] is None else r[self.lat] for r in rows], dtype=np.float64)
            valid = ~(np.isnan(lon) | np.isnan(lat))
            out[valid] = shapely.points(lon[valid], lat[valid])
            return out
        for i, r in enumerate(rows):
            shape = self.geojson(r)
            if shape is not None:
                out[i] = shapely.geometry.shape(shape)
        return out

    def geojson(self, values: list[Any]) -> dict[str, Any] | None:
        if self.type == "geopoint":
            lat, lon = values[self.lat], values[self.lon]
            return None if lat is None or lon is None else {"type": "Point", "coordinates": [lon, lat]}
        points = _points(values[self.raw])
        if self.type == "geotrace":
            return {"type": "LineString", "coordinates": [list(p) for p in points]} if points and len(points) >= 2 else None
        if not points:
            return None
        if points[0] != points[-1]:
            points.append(points[0])
        return {"type": "Polygon", "coordinates": [[list(p) for p in points]]} if len(points) >= 4 else None


def _plain(value: Any) -> Any:
    """A property value JSON and GDAL take: ISO text for date-times, None for NaN."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- GeoJSON ---------------------------------------------------------------------------------


def write_geojson(session: Session, plan: ExportPlan, out: BinaryIO, progress: Progress | None = None) -> None:
    """A GeoJSON FeatureCollection into ``out``, a feature per line as the rows are read."""
    geometry = _Geometry(plan, geometry_field(plan))
    shown = [(i, c.header) for i, c in enumerate(plan.main.columns) if i not in geometry.hidden]
    out.write(b'{"type": "FeatureCollection", "name": ' + json.dumps(plan.xml_form_id).encode() + b', "features": [\n')
    first = True
    for values in rows_.iter_rows(session, plan, plan.main, progress=progress):
        feature = {"type": "Feature", "geometry": geometry.geojson(values),
                   "properties": {header: _plain(values[i]) for i, header in shown}}
        out.write((b"" if first else b",\n") + json.dumps(feature, ensure_ascii=False).encode("utf-8"))
        first = False
    out.write(b"\n]}\n")


# -- GeoPackage ------------------------------------------------------------------------------


def _kind(column: Column) -> str:
    """How a column is stored in the GeoPackage: ``int``, ``float`` or ``str``."""
    if column.meta is not None:
        return "int" if column.meta in _INTEGER_META else "str"
    if column.type == "geopoint" and column.part is not None:
        return "float"
    if column.type == "select" and column.part is not None:
        return "int"  # a split select_multiple's 1/0 column
    if column.type in _INTEGER_TYPES:
        return "int"
    if column.type in _DECIMAL_TYPES:
        return "float"
    return "str"


def _number(value: Any, kind: str) -> Any:
    """``value`` as an int/float, or None when it is missing or not a number (an older version's text)."""
    if value is None or isinstance(value, str) and not value.strip():
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    if kind == "int":
        return int(number) if number.is_integer() else None
    return number


def _arrays(kinds: list[str], rows: list[list[Any]]) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """One array per column (and its null mask for integers) for a chunk of rows."""
    data: list[np.ndarray] = []
    masks: list[np.ndarray | None] = []
    for j, kind in enumerate(kinds):
        column = [r[j] for r in rows]
        if kind == "str":
            data.append(np.array([v if v is None or v.__class__ is str else str(_plain(v)) for v in column],
                                 dtype=object))
            masks.append(None)
        elif kind == "float":  # finite floats (geopoint parts, decimals) as they are: ``v - v`` is 0 only for them
            data.append(np.array([v if v.__class__ is float and v - v == 0.0 else
                                  np.nan if (n := _number(v, kind)) is None else n for v in column], dtype=np.float64))
            masks.append(None)
        else:
            numbers = [v if v.__class__ is int else _number(v, kind) for v in column]
            data.append(np.array([0 if n is None else n for n in numbers], dtype=np.int64))
            masks.append(np.array([n is None for n in numbers], dtype=bool))
    return data, masks


def _field_names(headers: list[str]) -> list[str]:
    """Column names GDAL keeps distinct (it compares them case-insensitively)."""
    out: list[str] = []
    seen: set[str] = set()
    for header in headers:
        name, n = header, 1
        while name.lower() in seen or name.lower() in ("fid", "geom"):
            n += 1
            name = f"{header}_{n}"
        seen.add(name.lower())
        out.append(name)
    return out


def geo_fields(plan: ExportPlan) -> list[dict[str, Any]]:
    """The geo fields a GeoPackage draws, one layer each: the one ``geometry_field`` names, else every
    geo field outside repeats (the first one first)."""
    first = geometry_field(plan)
    if plan.spec.options.geometry_field:
        return [first]
    return [first] + [f for f in plan.fields if f is not first and f.get("kind") == "field"
                      and f.get("type") in GEO_TYPES and f.get("repeat") is None]


class _Layer:
    """One layer of the GeoPackage: a geo field's geometry; every row (the first layer) or only the
    rows with an answer to it (the others: a perimeter walked on some visits)."""

    def __init__(self, plan: ExportPlan, geo: dict[str, Any], *, every_row: bool) -> None:
        self.name, self.type, self.every_row = geo["name"], GEOMETRY_TYPES[geo["type"]], every_row
        self.geometry = _Geometry(plan, geo)
        self.written = 0


def write_gpkg_file(session: Session, plan: ExportPlan, path: Path, progress: Progress | None = None) -> int:
    """Write the GeoPackage to ``path`` (a new file), a chunk at a time; returns the submissions written.

    One layer per geo field drawn (named after it, typed Point, LineString or Polygon): the first holds
    every submission (an empty geometry where there is no answer), the others the submissions with an
    answer to their field. Every layer has the same columns: the main table's, less the raw text of the
    geotraces and geoshapes drawn.
    """
    layers = [_Layer(plan, geo, every_row=i == 0) for i, geo in enumerate(geo_fields(plan))]
    hidden = set().union(*(layer.geometry.hidden for layer in layers))
    kept = [i for i in range(len(plan.main.columns)) if i not in hidden]
    kinds = [_kind(plan.main.columns[i]) for i in kept]
    names = _field_names([plan.main.columns[i].header for i in kept])
    done = 0
    chunk: list[list[Any]] = []

    def write(layer: _Layer, rows: list[list[Any]], shapes: np.ndarray) -> None:
        data, masks = _arrays(kinds, [[values[i] for i in kept] for values in rows])
        ogr_write(str(path), shapely.to_wkb(shapes), data, names, field_mask=masks, layer=layer.name, driver="GPKG",
                  geometry_type=layer.type, crs=WGS84, encoding="UTF-8", append=layer.written > 0,
                  promote_to_multi=False)
        layer.written += len(rows)

    def flush(last: bool = False) -> None:
        nonlocal done
        for layer in layers:
            shapes = layer.geometry.shapes(chunk)
            if layer.every_row:
                rows = chunk
            else:
                drawn = np.array([s is not None for s in shapes], dtype=bool)
                rows, shapes = [r for r, d in zip(chunk, drawn, strict=True) if d], shapes[drawn]
            if rows or (last and layer.written == 0):  # a layer without features is still in the file
                write(layer, rows, shapes)
        done += len(chunk)
        chunk.clear()

    for values in rows_.iter_rows(session, plan, plan.main, progress=progress):
        chunk.append(values)
        if len(chunk) >= GPKG_CHUNK:
            flush()
    flush(last=True)
    return done


@contextmanager
def _unsynced() -> Iterator[None]:
    """GDAL's SQLite writes without waiting for the disk (``PRAGMA synchronous=OFF``) meanwhile: for a
    temporary file, thrown away if anything fails, the wait buys nothing (a third of the wall time of
    a GeoPackage's writes). GDAL's option is the process's: restored after."""
    before = get_gdal_config_option("OGR_SQLITE_SYNCHRONOUS")
    set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": "OFF"})
    try:
        yield
    finally:
        set_gdal_config_options({"OGR_SQLITE_SYNCHRONOUS": before})


def write_gpkg(session: Session, plan: ExportPlan, out: BinaryIO, progress: Progress | None = None) -> None:
    """The GeoPackage into ``out`` (written to a temporary file first: SQLite needs a real file)."""
    with tempfile.TemporaryDirectory(prefix="asmfield-gpkg-") as tmp:
        path = Path(tmp) / "export.gpkg"
        with _unsynced():
            write_gpkg_file(session, plan, path, progress)
        with path.open("rb") as source:
            shutil.copyfileobj(source, out, 1 << 20)
