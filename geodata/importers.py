"""Pure site-file reading: GeoJSON, GeoPackage, zipped Shapefile, KML, CSV and XLSX (WKT or lon/lat).

``read_sites(path)`` returns a clean GeoDataFrame (EPSG:4326, valid polygons, one row per code)
plus per-row problems and warnings; a file that cannot be read at all raises an ``Invalid``
(``geodata.errors``) with a message naming what is wrong, so nothing is half-imported. No FastAPI, no database.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from geodata import spatial
from geodata.errors import (
    BadCrs,
    BadCsv,
    BadKind,
    BadMapping,
    BadZip,
    CsvWithoutGeometry,
    EmptySiteFile,
    IncompleteShapefile,
    MissingCrs,
    NoCodeColumn,
    NoGeometry,
    NotGeodata,
    SeveralLayers,
    UnreadableFile,
    ZipWithoutShp,
)

DATA_DIR = Path(__file__).resolve().parent / "data"
PROVINCES_FILE = DATA_DIR / "cod_adm1_provinces_geoboundaries.geojson"
#: geoBoundaries names → the French names the programme uses (SOURCE.md caveats).
PROVINCE_NAMES = {"North Kivu": "Nord-Kivu", "South Kivu": "Sud-Kivu", "Upper Uele": "Haut-Uele",
                  "Lower Uele": "Bas-Uele", "Central Kasai": "Kasaï-Central"}

KINDS = ("asm_site", "zea", "pe", "pr", "other")
#: Our attribute → candidate source columns (case-insensitive, first present wins).
DEFAULT_MAPPING: dict[str, list[str]] = {
    "code": ["code", "site_code", "site_id", "pcode", "id", "name"],
    "name": ["name", "nom", "site_name", "title", "label", "code"],
    "kind": ["kind", "type", "site_type"],
    "minerals": ["minerals", "mineral", "mineral1", "resource", "primary_minerals", "minerais", "minerai"],
    "radius_m": ["radius_m", "radius"],
    "territory": ["territory", "territoire"],
}
#: Named presets for well-known sources (domain.md §1.1, §1.3).
PRESETS: dict[str, dict[str, str]] = {
    "ipis": {"code": "pcode", "name": "name", "minerals": "mineral1", "territory": "territoire"},
    "cami": {"code": "name", "name": "name", "kind": "type", "holder": "parties", "status": "statut",
             "valid_until": "date_de1"},
}
FORMATS = ("geojson", "gpkg", "shapefile", "kml", "csv", "xlsx")


@dataclass
class ReadResult:
    """Clean rows (GeoDataFrame: row, code, name, kind, minerals, territory, properties, geometry) and findings.

    ``row`` is the feature's number in the file (from 1), so reports can point at it.
    """

    frame: gpd.GeoDataFrame
    format: str
    rows_read: int
    problems: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    #: rows merged into an earlier row of the same code (another part of a multi-part site)
    merged: int = 0


def parse_mapping(value: str | dict[str, str] | None) -> dict[str, str]:
    """``"ipis"``, ``"code=pcode,name=nom"`` or a dict → {our attribute: source column}."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if value.strip().lower() in PRESETS:
        return dict(PRESETS[value.strip().lower()])
    mapping = {}
    for part in value.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise BadMapping(f"bad mapping {part!r}: use attribute=column, e.g. code=pcode,name=name, or a preset "
                          f"({', '.join(PRESETS)})")
        key, col = (s.strip() for s in part.split("=", 1))
        mapping[key] = col
    return mapping


def normalise_kind(value: Any) -> str:
    """CAMI/IPIS type names → asm_site | zea | pe | pr | other."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "asm_site"
    text = str(value).strip().upper()
    if text in ("", "ASM", "ASM_SITE", "SITE", "MINE", "ASM SITE"):
        return "asm_site"
    if text.startswith("ZEA"):
        return "zea"
    if text.startswith("PE"):
        return "pe"
    if text.startswith("PR"):
        return "pr"
    return "other"


# -- reading -----------------------------------------------------------------------------


def detect_format(path: Path, filename: str | None = None) -> str:
    """The file's format from its name, confirmed by its first bytes."""
    name = (filename or path.name).lower()
    with open(path, "rb") as fh:
        head = fh.read(512)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"PK\x03\x04"):
        if name.endswith((".xlsx", ".xlsm")) or _is_workbook(path):
            return "xlsx"
        return "shapefile" if not name.endswith((".kmz",)) else "kml"
    if head.startswith(b"SQLite format 3\x00"):
        return "gpkg"
    if name.endswith((".geojson", ".json")) and stripped[:1] in (b"{", b"["):
        return "geojson"
    if name.endswith(".kml") and (stripped.startswith(b"<?xml") or stripped.startswith(b"<kml")):
        return "kml"
    if name.endswith((".csv", ".txt")):
        return "csv"
    if name.endswith(".shp"):
        return "shapefile"
    if stripped[:1] == b"{":
        return "geojson"
    if stripped.startswith(b"<?xml") or stripped.startswith(b"<kml"):
        return "kml"
    raise NotGeodata(f"{filename or path.name} is not a geodata file this server reads "
                  f"(GeoJSON, GeoPackage, zipped Shapefile, KML, or CSV/XLSX with WKT or lon/lat columns)")


def _is_workbook(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return "xl/workbook.xml" in zf.namelist()
    except zipfile.BadZipFile:
        return False


def _read_zip(path: Path, crs: str | None) -> gpd.GeoDataFrame:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]
    except zipfile.BadZipFile as exc:
        raise BadZip("the zip file is damaged or not a zip") from exc
    shps = [n for n in names if n.lower().endswith(".shp")]
    if not shps:
        kmls = [n for n in names if n.lower().endswith(".kml")]
        if kmls:
            return _read_ogr(f"/vsizip/{path}/{kmls[0]}")
        raise ZipWithoutShp("the zip file holds no .shp file (a zipped Shapefile needs .shp, .shx, .dbf and .prj)")
    if len(shps) > 1:
        raise SeveralLayers(f"the zip file holds {len(shps)} .shp files ({', '.join(shps[:5])}); upload one layer per zip")
    base = shps[0][:-4]
    lower = {n.lower() for n in names}
    for ext in (".shx", ".dbf"):
        if (base + ext).lower() not in lower:
            raise IncompleteShapefile(f"the Shapefile {shps[0]} is missing its {ext} file")
    frame = _read_ogr(f"/vsizip/{path}/{shps[0]}")
    if frame.crs is None:
        if not crs:
            raise MissingCrs(f"the Shapefile {shps[0]} has no .prj (coordinate reference system); add the .prj "
                          "to the zip or give the CRS explicitly (e.g. --crs EPSG:32735)")
        frame = _with_crs(frame, crs)
    return frame


def _read_ogr(source: str) -> gpd.GeoDataFrame:
    import pyogrio

    try:
        return pyogrio.read_dataframe(source)
    except Exception as exc:  # pyogrio raises several error types for unreadable data
        message = str(exc).split("\n")[0]
        # never the server's (temporary) path in a message: only the file's own name
        message = re.sub(r"(/vsizip/)?(/[^\s'\"]*/)+", "", message)[:200]
        raise UnreadableFile(f"cannot read the file as geodata: {message}") from exc


#: Separators a spreadsheet program writes: French Excel ``;`` (the comma is the decimal mark), others ``,``, tab, ``|``.
SEPARATORS = ";,\t|"
#: A number as French spreadsheets write it: decimal comma, perhaps spaces as thousands separators
#: (``-10,716``, ``1 234,5``, ``80``).
FRENCH_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:[ \u00a0\u202f]\d{3})+|\d+)(?:,\d+)?$")


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252 (what Excel writes as "CSV" on a French Windows)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # cp1252 leaves five bytes undefined; latin-1 takes them rather than refusing the whole file
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def sniff_separator(text: str) -> str:
    """The field separator of a CSV: the candidate splitting the first lines into the same, largest
    number of fields (quotes respected); ``,`` when nothing splits them."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    best, best_score = ",", (0, 0)
    for sep in SEPARATORS:
        counts = [len(row) for row in csv.reader(lines, delimiter=sep)]
        if not counts or counts[0] < 2:
            continue
        score = (sum(c == counts[0] for c in counts), counts[0])
        if score > best_score:
            best, best_score = sep, score
    return best


def _decimal_commas(df: pd.DataFrame) -> pd.DataFrame:
    """Columns whose every value is a number, some with a decimal comma (``-10,716``), get decimal points."""
    for col in df.columns:
        values = df[col][df[col].str.strip() != ""].str.strip()
        if len(values) and values.str.contains(",", regex=False).any() and values.str.match(FRENCH_NUMBER).all():
            df[col] = (df[col].str.strip().str.replace(r"[ \u00a0\u202f]", "", regex=True)
                       .str.replace(",", ".", regex=False))
    return df


def _read_csv(path: Path) -> gpd.GeoDataFrame:
    """A CSV as a spreadsheet program saves it: any of the usual separators and encodings; numbers with a
    decimal comma when the separator is not a comma."""
    text = decode_text(path.read_bytes())
    separator = sniff_separator(text)
    try:
        df = pd.read_csv(io.StringIO(text), sep=separator, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise BadCsv(f"cannot read the CSV: {str(exc).splitlines()[0][:200]}") from exc
    df.columns = [str(c).strip() for c in df.columns]
    if separator != ",":
        df = _decimal_commas(df)
    return _table_frame(df, "CSV")


def _read_xlsx(path: Path) -> gpd.GeoDataFrame:
    """The first sheet of a workbook with a WKT or lon/lat columns (else the first sheet)."""
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=str, engine="openpyxl")
    except Exception as exc:  # openpyxl raises several error types for damaged workbooks
        raise BadCsv(f"cannot read the workbook: {str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}") from exc
    if not sheets:
        raise BadCsv("the workbook has no sheet")
    frames = [df.fillna("").astype(str) for df in sheets.values()]
    for df in frames:
        df.columns = [str(c).strip() for c in df.columns]
    chosen = next((df for df in frames if _geometry_columns(df) != (None, None, None)), frames[0])
    return _table_frame(_decimal_commas(chosen), "sheet")


def _geometry_columns(df: pd.DataFrame) -> tuple[str | None, str | None, str | None]:
    cols = {c.lower().strip(): c for c in df.columns}
    wkt_col = next((cols[c] for c in ("wkt", "geometry", "geom", "the_geom") if c in cols), None)
    lon_col = next((cols[c] for c in ("lon", "longitude", "lng", "x") if c in cols), None)
    lat_col = next((cols[c] for c in ("lat", "latitude", "y") if c in cols), None)
    return wkt_col, lon_col, lat_col


def _table_frame(df: pd.DataFrame, what: str) -> gpd.GeoDataFrame:
    """Rows of text (CSV, spreadsheet) with a WKT column or lon/lat columns as a GeoDataFrame."""
    wkt_col, lon_col, lat_col = _geometry_columns(df)
    if wkt_col is not None:
        geoms = []
        for value in df[wkt_col]:
            try:
                geoms.append(shapely.from_wkt(value) if value.strip() else None)
            except shapely.errors.GEOSException:
                geoms.append("bad")
        df = df.drop(columns=[wkt_col])
    elif lon_col is not None and lat_col is not None:
        lon = pd.to_numeric(df[lon_col].str.replace(",", ".", regex=False), errors="coerce")
        lat = pd.to_numeric(df[lat_col].str.replace(",", ".", regex=False), errors="coerce")
        geoms = [shapely.Point(x, y) if np.isfinite(x) and np.isfinite(y) else None for x, y in zip(lon, lat, strict=True)]
        df = df.drop(columns=[lon_col, lat_col])
    else:
        raise CsvWithoutGeometry(f"the {what} needs a WKT column (wkt/geometry) or lon/lat columns "
                                 "(lon,lat or longitude,latitude)")
    frame = gpd.GeoDataFrame(df, geometry=[None if g == "bad" else g for g in geoms], crs=4326)
    frame["_bad_wkt"] = [g == "bad" for g in geoms]
    return frame


def _with_crs(frame: gpd.GeoDataFrame, crs: str | int, *, override: bool = False) -> gpd.GeoDataFrame:
    try:
        return frame.set_crs(crs, allow_override=override)
    except Exception as exc:  # pyproj.CRSError and friends
        raise BadCrs(f"unknown coordinate reference system {crs!r}; use e.g. EPSG:4326 or EPSG:32735") from exc


def read_frame(path: Path, *, filename: str | None = None, crs: str | None = None) -> tuple[gpd.GeoDataFrame, str]:
    """Read any supported file into a GeoDataFrame in EPSG:4326 (no cleaning yet)."""
    fmt = detect_format(path, filename)
    if fmt == "shapefile" and zipfile.is_zipfile(path):
        frame = _read_zip(path, crs)
    elif fmt == "csv":
        frame = _read_csv(path)
    elif fmt == "xlsx":
        frame = _read_xlsx(path)
    else:
        frame = _read_ogr(str(path))
        if frame.crs is None:
            if fmt == "shapefile" and not crs:
                raise MissingCrs("the Shapefile has no .prj (coordinate reference system); give the CRS explicitly")
            frame = _with_crs(frame, crs or 4326)
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry is None:
        raise NoGeometry("the file has no geometry column")
    if crs and fmt in ("csv", "xlsx"):
        frame = _with_crs(frame, crs, override=True)
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        try:
            frame = frame.to_crs(4326)
        except Exception as exc:
            raise BadCrs(f"cannot reproject from {frame.crs} to EPSG:4326: {exc}") from exc
    return frame, fmt


# -- cleaning ----------------------------------------------------------------------------


def _column(frame: pd.DataFrame, candidates: list[str]) -> str | None:
    lower = {str(c).lower(): c for c in frame.columns if c != frame.geometry.name}
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    return None


def _value(row: dict[str, Any], col: str | None) -> Any:
    if col is None:
        return None
    value = row[col]
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value


def _polygonal(geom: BaseGeometry) -> BaseGeometry | None:
    """The polygonal part of a (made-valid) geometry, or None."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
        if parts:
            return shapely.union_all(parts)
    return None


def clean(frame: gpd.GeoDataFrame, *, mapping: dict[str, str] | None = None, kind: str | None = None,
          default_radius_m: float | None = 50.0, fmt: str = "", strict: bool = True) -> ReadResult:
    """Map attributes, repair geometries, buffer points, drop bad rows (reported, not fatal).

    :param mapping: our attribute → source column (``parse_mapping``); unmapped ones use defaults.
    :param kind: force every row to this kind (asm_site, zea, pe, pr, other).
    :param default_radius_m: radius for points without one (None: points without radius are refused).
    :param strict: a mapped column missing from the file is an error (presets: only the code column).
    """
    mapping = mapping or {}
    if kind is not None and kind not in KINDS:
        raise BadKind(f"unknown site kind {kind!r}; use one of {', '.join(KINDS)}")
    cols: dict[str, str | None] = {}
    for attr, candidates in DEFAULT_MAPPING.items():
        if attr in mapping:
            col = _column(frame, [mapping[attr]])
            if col is None and (strict or attr == "code"):
                raise BadMapping(f"the mapping names column {mapping[attr]!r} for {attr}, but the file has no such column "
                              f"(columns: {', '.join(map(str, frame.columns[:30]))})")
            cols[attr] = col
        else:
            cols[attr] = _column(frame, candidates)
    if cols["code"] is None:
        raise NoCodeColumn("no site code column: name it code (or pcode/site_id), or pass a mapping such as code=MYCOLUMN")
    extra = {k: _column(frame, [v]) for k, v in mapping.items() if k not in DEFAULT_MAPPING}
    used = {c for c in (*cols.values(), *extra.values()) if c is not None}

    problems: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}  # code → index in rows
    parts: dict[str, list[BaseGeometry]] = {}
    merged = 0
    bad_wkt = frame["_bad_wkt"] if "_bad_wkt" in frame.columns else None
    geoms = frame.geometry.values
    pending_points: list[tuple[int, float]] = []
    columns = [c for c in frame.columns if c != frame.geometry.name]
    # vectorised geometry facts, then one pass over plain dict rows
    flat = shapely.force_2d(np.asarray(geoms, dtype=object))
    missing = shapely.is_missing(flat) | shapely.is_empty(flat)
    with np.errstate(invalid="ignore"):
        b = shapely.bounds(flat)
        out_of_range = ~np.isfinite(b).all(axis=1) | (np.abs(b[:, [0, 2]]) > 180).any(axis=1) | \
            (np.abs(b[:, [1, 3]]) > 90).any(axis=1)
    is_valid = shapely.is_valid(flat)
    records = pd.DataFrame(frame.drop(columns=[frame.geometry.name])).to_dict("records")
    for i, row in enumerate(records):
        line = i + 1
        code = _value(row, cols["code"])
        code = None if code is None else str(code)
        if isinstance(code, str) and re.fullmatch(r"\d+\.0", code):
            code = code[:-2]
        if not code:
            problems.append({"row": line, "code": None, "problem": "missing site code"})
            continue
        if len(code) > 100:
            problems.append({"row": line, "code": code[:40], "problem": "site code longer than 100 characters"})
            continue
        geom = flat[i]
        if code in seen and not (rows[seen[code]]["geometry"].geom_type in ("Polygon", "MultiPolygon")
                                 and geom is not None
                                 and geom.geom_type in ("Polygon", "MultiPolygon", "GeometryCollection")):
            problems.append({"row": line, "code": code,
                             "problem": f"duplicate code (first on row {rows[seen[code]]['row']})"})
            continue
        if bad_wkt is not None and bool(bad_wkt.iloc[i]):
            problems.append({"row": line, "code": code, "problem": "geometry is not valid WKT"})
            continue
        if missing[i]:
            problems.append({"row": line, "code": code, "problem": "empty geometry"})
            continue
        if out_of_range[i]:
            problems.append({"row": line, "code": code, "problem": "coordinates are not longitude/latitude "
                             "(out of range); is the CRS right?"})
            continue
        radius = _value(row, cols["radius_m"])
        if geom.geom_type in ("Point", "MultiPoint"):
            try:
                r = float(radius) if radius is not None else default_radius_m
            except (TypeError, ValueError):
                r = None
            if r is None or not np.isfinite(r) or r <= 0 or r > 50_000:
                problems.append({"row": line, "code": code, "problem": "a point needs a radius in metres (0–50000)"})
                continue
            if geom.geom_type == "MultiPoint":
                geom = shapely.centroid(geom)
            pending_points.append((len(rows), r))
        elif geom.geom_type in ("Polygon", "MultiPolygon", "GeometryCollection"):
            if not is_valid[i]:
                fixed = _polygonal(shapely.make_valid(geom))
                if fixed is None or fixed.is_empty:
                    problems.append({"row": line, "code": code, "problem": "invalid polygon that cannot be repaired"})
                    continue
                warnings.append({"row": line, "code": code, "warning": "invalid polygon repaired (make_valid)"})
                geom = fixed
            else:
                geom = _polygonal(geom)
                if geom is None:
                    problems.append({"row": line, "code": code, "problem": "no polygon in the geometry collection"})
                    continue
        else:
            problems.append({"row": line, "code": code, "problem": f"{geom.geom_type} is not a site shape "
                             "(use polygons, or points with a radius)"})
            continue
        if code in seen:
            # same code, another polygon: another part of a multi-part site split across rows
            first = rows[seen[code]]
            if any(shapely.equals(geom, part) for part in parts[code]):
                problems.append({"row": line, "code": code, "problem": f"duplicate code (first on row {first['row']})"})
                continue
            parts[code].append(geom)
            first["geometry"] = shapely.union_all(parts[code])
            merged += 1
            warnings.append({"row": line, "code": code, "warning": f"another part of the site on row {first['row']}: "
                             "merged into one multi-polygon"})
            continue
        x0, y0, x1, y1 = geom.bounds
        rx, ry = (x0 + x1) / 2, (y0 + y1) / 2
        if not spatial.in_drc_bbox(rx, ry):
            warnings.append({"row": line, "code": code, "warning": f"location ({rx:.5f}, {ry:.5f}) is outside the "
                             "DRC's bounding box; are longitude and latitude swapped?"})
        props = {}
        for c in columns:
            if c in used or c == frame.geometry.name or c == "_bad_wkt":
                continue
            v = _value(row, c)
            if v is not None and not isinstance(v, (bytes, bytearray)):
                props[str(c)] = v if isinstance(v, (int, float, bool)) else str(v)
        for k, c in extra.items():
            v = _value(row, c)
            if v is not None:
                props[k] = v if isinstance(v, (int, float, bool)) else str(v)
        minerals = _value(row, cols["minerals"])
        seen[code] = len(rows)
        parts[code] = [geom]
        rows.append({
            "row": line,
            "code": code,
            "name": str(_value(row, cols["name"]) or code)[:300],
            "kind": kind or normalise_kind(_value(row, cols["kind"])),
            "minerals": [m.strip().lower() for m in re.split(r"[;,|]", str(minerals)) if m.strip()] if minerals else [],
            "territory": (str(_value(row, cols["territory"]))[:100] if _value(row, cols["territory"]) else None),
            "properties": props,
            "geometry": geom,
        })
    if pending_points:
        idx = [p[0] for p in pending_points]
        pts = [rows[i]["geometry"] for i in idx]
        circles = spatial.buffer_points_m(np.array([p.x for p in pts]), np.array([p.y for p in pts]),
                                          np.array([p[1] for p in pending_points]))
        for i, c in zip(idx, circles, strict=True):
            rows[i]["geometry"] = c
    out = gpd.GeoDataFrame(rows, columns=["row", "code", "name", "kind", "minerals", "territory", "properties", "geometry"],
                           geometry="geometry", crs=4326)
    return ReadResult(frame=out, format=fmt, rows_read=len(frame), problems=problems, warnings=warnings,
                      merged=merged)


def read_sites(path: Path, *, filename: str | None = None, mapping: str | dict[str, str] | None = None,
               kind: str | None = None, crs: str | None = None, default_radius_m: float | None = 50.0) -> ReadResult:
    """Read and clean a site file. Raises ``Invalid`` when the file as a whole is unusable."""
    frame, fmt = read_frame(Path(path), filename=filename, crs=crs)
    if len(frame) == 0:
        raise EmptySiteFile("the file holds no features")
    preset = isinstance(mapping, str) and mapping.strip().lower() in PRESETS
    result = clean(frame, mapping=parse_mapping(mapping), kind=kind, default_radius_m=default_radius_m, fmt=fmt,
                   strict=not preset)
    return result


# -- provinces ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _provinces() -> tuple[np.ndarray, list[str], list[str], shapely.STRtree]:
    frame = gpd.read_file(PROVINCES_FILE)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    shapely.prepare(geoms)
    names = [PROVINCE_NAMES.get(n, n) for n in frame["shapeName"]]
    return geoms, names, list(frame["shapeISO"]), shapely.STRtree(geoms)


def provinces_of(lons: np.ndarray, lats: np.ndarray) -> tuple[list[str | None], list[str | None]]:
    """Province name and ISO 3166-2 code of each point (bundled geoBoundaries layer, ODbL)."""
    geoms, names, isos, _ = _provinces()
    lons = np.asarray(lons, dtype=float)
    lats = np.asarray(lats, dtype=float)
    found = np.full(len(lons), -1)
    bounds = shapely.bounds(geoms)
    for g, (x0, y0, x1, y1) in enumerate(bounds):
        candidates = np.nonzero((found < 0) & (lons >= x0) & (lons <= x1) & (lats >= y0) & (lats <= y1))[0]
        if len(candidates):
            found[candidates[shapely.contains_xy(geoms[g], lons[candidates], lats[candidates])]] = g
    return ([names[g] if g >= 0 else None for g in found], [isos[g] if g >= 0 else None for g in found])


def provinces_of_geometries(geoms: np.ndarray) -> tuple[list[str | None], list[str | None]]:
    """Province name and ISO code of each geometry: the province its area overlaps most.

    Not the centroid or a point on the surface: a title straddling a border belongs where most of it
    lies, whatever the vertex order or ring orientation of the file it came from (Shapefile and GeoJSON
    of the same polygon give the same province). Equal overlaps go to the first ISO code, so the answer
    never flips between runs. A geometry without area (a point or line) uses its intersection with
    the province (any); none overlapping at all gives None.
    """
    provinces, names, isos, tree = _provinces()
    geoms = np.asarray(geoms, dtype=object)
    found = np.full(len(geoms), -1)
    if len(geoms) == 0:
        return [], []
    pairs = tree.query(geoms, predicate="intersects")
    site_idx, prov_idx = pairs[0], pairs[1]
    counts = np.bincount(site_idx, minlength=len(geoms))
    single = counts[site_idx] == 1
    found[site_idx[single]] = prov_idx[single]
    many = ~single
    if many.any():
        a, b = site_idx[many], prov_idx[many]
        # areas in degrees² compare fairly: the provinces a site overlaps lie at its own latitude
        overlaps = shapely.area(shapely.intersection(geoms[a], provinces[b]))
        overlaps = np.where(overlaps > 0, overlaps, 0.0)
        best: dict[int, tuple[float, str, int]] = {}
        for i, g, area in zip(a.tolist(), b.tolist(), overlaps.tolist(), strict=True):
            key = (area, isos[g], g)
            current = best.get(i)
            if current is None or area > current[0] or (area == current[0] and isos[g] < current[1]):
                best[i] = key
        for i, (_, _, g) in best.items():
            found[i] = g
    return ([names[g] if g >= 0 else None for g in found], [isos[g] if g >= 0 else None for g in found])


def _fold(text: str) -> str:
    """Lower case without accents, spaces, hyphens or apostrophes: ``Kasaï-Central`` → ``kasaicentral``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c)).casefold()


@lru_cache(maxsize=1)
def _province_keys() -> dict[str, str]:
    """Folded name (ours and geoBoundaries' English one) or ISO code → the stored province name."""
    _, names, isos, _ = _provinces()
    keys = {_fold(english): ours for english, ours in PROVINCE_NAMES.items()}
    for name, iso in zip(names, isos, strict=True):
        keys[_fold(name)] = name
        keys[_fold(iso)] = name
    return keys


def canonical_province(value: str) -> str:
    """The stored name of the province ``value`` names, whatever its accents, case or hyphens, or its
    ISO 3166-2 code (``equateur``, ``EQUATEUR``, ``cd-eq`` → ``Équateur``); unknown values unchanged."""
    return _province_keys().get(_fold(value), value.strip())
