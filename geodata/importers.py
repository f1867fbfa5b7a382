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
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import compress
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
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
    #: older rows of a register with one row per visit, superseded by the latest row of their code
    superseded: int = 0
    #: the date column that chose the latest rows (when rows were superseded)
    latest_by: str | None = None
    #: with ``history``: the superseded rows (code, observed_on, row, properties), else None
    observations: pd.DataFrame | None = None


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
    bad = np.zeros(len(df), dtype=bool)
    if wkt_col is not None:
        text = df[wkt_col].fillna("").astype(str).str.strip().to_numpy(dtype=object)
        given = text != ""
        geoms = np.full(len(df), None, dtype=object)
        geoms[given] = shapely.from_wkt(text[given], on_invalid="ignore")
        bad = given & shapely.is_missing(geoms)
        df = df.drop(columns=[wkt_col])
    elif lon_col is not None and lat_col is not None:
        lon = pd.to_numeric(df[lon_col].str.replace(",", ".", regex=False), errors="coerce").to_numpy(dtype=float)
        lat = pd.to_numeric(df[lat_col].str.replace(",", ".", regex=False), errors="coerce").to_numpy(dtype=float)
        geoms = shapely.points(lon, lat)
        geoms[~(np.isfinite(lon) & np.isfinite(lat))] = None
        df = df.drop(columns=[lon_col, lat_col])
    else:
        raise CsvWithoutGeometry(f"the {what} needs a WKT column (wkt/geometry) or lon/lat columns "
                                 "(lon,lat or longitude,latitude)")
    frame = gpd.GeoDataFrame(df, geometry=gpd.GeoSeries(geoms, index=df.index), crs=4326)
    frame["_bad_wkt"] = bad
    return frame


def _with_crs(frame: gpd.GeoDataFrame, crs: str | int, *, override: bool = False) -> gpd.GeoDataFrame:
    return frame.set_crs(given_crs(crs), allow_override=override)


def given_crs(crs: str | int) -> pyproj.CRS:
    """The CRS a user names (``EPSG:32735``, ``32735``, WKT, PROJ); ``BadCrs`` when it names none."""
    try:
        return pyproj.CRS.from_user_input(crs.strip() if isinstance(crs, str) else crs)
    except Exception as exc:  # pyproj.CRSError and friends
        raise BadCrs(f"unknown coordinate reference system {crs!r}; use e.g. EPSG:4326 or EPSG:32735") from exc


def _crs_name(crs: pyproj.CRS) -> str:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _same_crs(a: pyproj.CRS, b: pyproj.CRS) -> bool:
    return a.equals(b, ignore_axis_order=True) or (a.to_epsg() is not None and a.to_epsg() == b.to_epsg())


def read_frame(path: Path, *, filename: str | None = None, crs: str | None = None,
               notes: list[dict[str, Any]] | None = None) -> tuple[gpd.GeoDataFrame, str]:
    """Read any supported file into a GeoDataFrame in EPSG:4326 (no cleaning yet).

    ``crs`` is checked first, whatever the file (an unknown CRS is refused). A file without a CRS
    gets it; a file whose own CRS differs gets it too, as an override (its coordinates are taken to
    be in ``crs``: a GeoJSON written in UTM, a wrong .prj), and a warning about the whole file
    (row 0) is added to ``notes``.
    """
    crs = str(crs).strip() or None if crs is not None else None
    wanted = given_crs(crs) if crs else None
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
    elif wanted is not None and frame.crs is not None and not _same_crs(frame.crs, wanted):
        if notes is not None:
            notes.append({"row": 0, "code": None, "warning": f"the given CRS {crs} replaces the file's own "
                          f"({_crs_name(frame.crs)}): its coordinates are read as {crs}"})
        frame = frame.set_crs(wanted, allow_override=True)
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        try:
            frame = frame.to_crs(4326)
        except Exception as exc:
            raise BadCrs(f"cannot reproject from {frame.crs} to EPSG:4326: {exc}") from exc
    return frame, fmt


# -- cleaning ----------------------------------------------------------------------------

#: Columns taken for the visit date of a register's rows when ``latest_by`` is not given (exactly one
#: of them present, any case).
DATE_COLUMNS = ("date", "visit_date", "date_visite", "date_de_visite", "vdate", "visitdate", "date_of_visit",
                "survey_date")
#: KML styling fields (how Google Earth draws a placemark, never a fact about the site): dropped.
KML_STYLE = ("tessellate", "extrude", "visibility", "altitudeMode", "drawOrder", "icon")
#: KML fields dropped when no placemark has one: times, and the placemarks' XML ids (so that, without
#: ids, the placemark's name is the site code).
KML_OPTIONAL = ("id", "begin", "end", "timestamp")
#: Excel's day 0 (serial dates count days from it; 1900 leap-year bug included).
EXCEL_EPOCH = pd.Timestamp("1899-12-30")
DMY = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?:[ T].*)?$")
#: Rows whose property dicts are built at once (bounds the temporary lists).
PROPERTY_CHUNK = 20_000
#: Called with the fraction done (0–1) and what is being done, e.g. ``"cleaning"``.
Progress = Callable[[float, str], None]


def _column(frame: pd.DataFrame, candidates: list[str]) -> str | None:
    lower = {str(c).lower(): c for c in frame.columns if c != frame.geometry.name}
    for cand in candidates:
        if cand.lower() in lower:
            return lower[cand.lower()]
    return None


def _value(value: Any) -> Any:
    """One cell as the site keeps it: None when empty, text stripped, a date as YYYY-MM-DD."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, (list, tuple)):  # e.g. minerals of an already cleaned frame
        return ",".join(map(str, value)) or None
    return value if isinstance(value, (int, float, bool)) else str(value)


def cells(series: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column's values as properties keep them, converted column-wise: (object array, present mask).

    Empty cells (NaN, NaT, None, blank text) are None and not present; text is stripped; numbers and
    booleans are Python ones; dates and timestamps are ISO dates (YYYY-MM-DD); anything else is text.
    """
    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        values = series.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
        present = series.notna().to_numpy()
    elif pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        values = series.to_numpy(dtype=object)  # Python int/float/bool (pd.NA where a nullable column is empty)
        present = series.notna().to_numpy()
    elif pd.api.types.is_string_dtype(dtype) and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        # registers repeat their values: strip each distinct one once (factorize hashes in C)
        index, distinct = pd.factorize(series, use_na_sentinel=True)
        stripped = np.array([v.strip() or None for v in np.asarray(distinct, dtype=object).tolist()] + [None],
                            dtype=object)
        values = stripped[index]  # index -1 (empty cell) takes the None at the end
        present = np.array([v is not None for v in stripped], dtype=bool)[index]
    else:  # mixed types (GeoJSON properties), categoricals, dates as objects: cell by cell
        values = np.array([_value(v) for v in series.to_numpy(dtype=object)] + [None], dtype=object)[:-1]
        present = np.array([v is not None for v in values], dtype=bool)
    if not present.all():
        values = values.copy()
        values[~present] = None
    return values, present


def parse_dates(series: pd.Series) -> pd.Series:
    """Dates as registers write them: ISO (``2024-05-03``, with or without a time), ``dd/mm/yyyy``
    (also with ``-`` or ``.``), Excel serial day numbers (``45415``) or date columns; NaT where none."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        out = series
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_convert(None)
        return out.astype("datetime64[ns]").reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        return _excel_serials(pd.to_numeric(series, errors="coerce").reset_index(drop=True))
    # a register has far fewer distinct dates than rows: parse each distinct text once
    index, distinct = pd.factorize(pd.Series(cells(series)[0], dtype=object), use_na_sentinel=True)
    parsed = _parse_texts(pd.Series(distinct, dtype=object).astype(str).str.strip())
    return pd.Series(np.append(parsed.to_numpy(), np.datetime64("NaT", "ns"))[index], dtype="datetime64[ns]")


def _parse_texts(text: pd.Series) -> pd.Series:
    """Stripped texts as timestamps: Excel serials, then dd/mm/yyyy, then ISO 8601; NaT for the rest."""
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    number = text.str.fullmatch(r"\d+(?:\.\d+)?")
    if number.any():
        out[number] = _excel_serials(pd.to_numeric(text[number], errors="coerce"))
    dmy = text.str.extract(DMY)
    is_dmy = dmy[0].notna()
    if is_dmy.any():
        parts = dmy[is_dmy].astype(int)
        out[is_dmy] = pd.to_datetime(pd.DataFrame({"year": parts[2], "month": parts[1], "day": parts[0]}),
                                     errors="coerce")
    rest = ~number & ~is_dmy & (text != "")
    if rest.any():
        iso = pd.to_datetime(text[rest], format="ISO8601", errors="coerce", utc=True)
        out[rest] = iso.dt.tz_convert(None)
    return out


def _excel_serials(days: pd.Series) -> pd.Series:
    """Excel day numbers (1 = 1900-01-01, fractions are the time of day) as timestamps; NaT out of range."""
    days = days.where((days >= 1) & (days < 100_000))
    return (EXCEL_EPOCH + pd.to_timedelta(days, unit="D")).astype("datetime64[ns]")


def _date_column(frame: pd.DataFrame, latest_by: str | None) -> tuple[str | None, list[str]]:
    """The column that dates a register's rows: ``latest_by``, else the one obvious date column
    (None when there are several: they are returned too)."""
    if latest_by:
        col = _column(frame, [latest_by])
        if col is None:
            raise BadMapping(f"latest_by names column {latest_by!r}, but the file has no such column "
                             f"(columns: {', '.join(map(str, frame.columns[:30]))})")
        return col, [col]
    found = [c for c in frame.columns if c != frame.geometry.name and str(c).strip().lower() in DATE_COLUMNS]
    return (found[0] if len(found) == 1 else None), found


def _latest_rows(codes: np.ndarray, eligible: np.ndarray, dates: pd.Series) -> tuple[np.ndarray, int]:
    """Row numbers (0-based) superseded by a later row of the same code among ``eligible`` rows (the
    latest date wins, rows without a date rank oldest, equal dates go to the last row in the file),
    and how many of the rows sharing a code have no date."""
    idx = np.flatnonzero(eligible)
    sub = pd.DataFrame({"code": codes[idx], "date": dates.to_numpy()[idx], "i": idx})
    sub = sub[sub["code"].duplicated(keep=False).to_numpy()]
    if len(sub) == 0:
        return np.empty(0, dtype=int), 0
    # NaT first (oldest) when sorting ascending; the file order breaks ties
    sub = sub.sort_values(["code", "date", "i"], na_position="first", kind="stable")
    older = sub["code"].duplicated(keep="last").to_numpy()
    return np.sort(sub["i"].to_numpy()[older]), int(sub["date"].isna().sum())


def _polygonal(geom: BaseGeometry) -> BaseGeometry | None:
    """The polygonal part of a (made-valid) geometry, or None."""
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in geom.geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
        if parts:
            return shapely.union_all(parts)
    return None


def _minerals(value: Any) -> tuple[str, ...]:
    return tuple(m.strip().lower() for m in re.split(r"[;,|]", str(value)) if m.strip()) if value else ()


def _each(values: np.ndarray, fn: Callable[[Any], Any]) -> list[Any]:
    """``fn`` of each value, computed once per distinct value (columns repeat a few values)."""
    once = {v: fn(v) for v in set(values.tolist())}
    return [once[v] for v in values.tolist()]


def _code_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text[:-2] if text.endswith(".0") and text[:-2].isdigit() else text


# shapely geometry type ids
_POINT, _POLYGON, _MULTIPOINT, _MULTIPOLYGON, _COLLECTION = 0, 3, 4, 6, 7


def clean(frame: gpd.GeoDataFrame, *, mapping: dict[str, str] | None = None, kind: str | None = None,
          default_radius_m: float | None = 50.0, fmt: str = "", strict: bool = True, latest_by: str | None = None,
          history: bool = False, progress: Progress | None = None) -> ReadResult:
    """Map attributes, repair geometries, buffer points, drop bad rows (reported, not fatal).

    Column-wise: each column is converted once (``cells``), geometry checks run on whole arrays;
    only rows sharing a code are looked at one by one.

    :param mapping: our attribute → source column (``parse_mapping``); unmapped ones use defaults.
    :param kind: force every row to this kind (asm_site, zea, pe, pr, other).
    :param default_radius_m: radius for points without one (None: points without radius are refused).
    :param strict: a mapped column missing from the file is an error (presets: only the code column).
    :param latest_by: the date column of a register with one row per visit: of the rows sharing a
        code, the latest is the site, the older ones are superseded (``ReadResult.superseded``). Not
        given: the one obvious date column (``DATE_COLUMNS``), and then only point rows are reduced
        (polygons sharing a code stay parts of one multi-part site).
    :param history: return the superseded rows as ``ReadResult.observations``.
    :param progress: called with the fraction done and the step.
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
    date_col, date_columns = _date_column(frame, latest_by)
    extra = {k: _column(frame, [v]) for k, v in mapping.items() if k not in DEFAULT_MAPPING}
    used = {c for c in (*cols.values(), *extra.values()) if c is not None}
    n = len(frame)
    table = pd.DataFrame(frame.drop(columns=[frame.geometry.name])).reset_index(drop=True)
    source_columns = [c for c in table.columns if c != "_bad_wkt"]
    converted: dict[Any, tuple[np.ndarray, np.ndarray]] = {}

    def column(c: Any) -> tuple[np.ndarray, np.ndarray]:
        if c not in converted:
            converted[c] = cells(table[c])
        return converted[c]

    def column_at(c: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column ``c`` at ``rows`` only (the kept rows of a register are a part of it)."""
        if c in converted:
            values, present = converted[c]
            return values[rows], present[rows]
        return cells(table[c].iloc[rows])

    def attribute(attr: str) -> np.ndarray:
        return column(cols[attr])[0] if cols[attr] is not None else np.full(n, None, dtype=object)

    # -- every row's own problem (the first that applies), from whole columns -------------------------
    codes = np.array([_code_text(v) for v in attribute("code")] + [None], dtype=object)[:-1]
    no_code = np.array([not c for c in codes], dtype=bool)
    long_code = np.array([c is not None and len(c) > 100 for c in codes], dtype=bool)
    flat = shapely.force_2d(np.asarray(frame.geometry.values, dtype=object))
    types = shapely.get_type_id(flat)
    missing = shapely.is_missing(flat) | shapely.is_empty(flat)
    with np.errstate(invalid="ignore"):
        b = shapely.bounds(flat)
        out_of_range = ~np.isfinite(b).all(axis=1) | (np.abs(b[:, [0, 2]]) > 180).any(axis=1) | \
            (np.abs(b[:, [1, 3]]) > 90).any(axis=1)
    bad_wkt = table["_bad_wkt"].to_numpy(dtype=bool) if "_bad_wkt" in table.columns else np.zeros(n, dtype=bool)
    is_point = np.isin(types, (_POINT, _MULTIPOINT))
    is_polygonal = np.isin(types, (_POLYGON, _MULTIPOLYGON, _COLLECTION))
    radius_cells = attribute("radius_m")
    radii = pd.to_numeric(pd.Series(radius_cells, dtype=object), errors="coerce").to_numpy(dtype=float, copy=True)
    no_radius = np.array([v is None for v in radius_cells], dtype=bool)
    radii[no_radius] = np.nan if default_radius_m is None else default_radius_m
    with np.errstate(invalid="ignore"):
        bad_radius = ~np.isfinite(radii) | (radii <= 0) | (radii > 50_000)
    own: list[str | None] = [None] * n
    checks = (
        (bad_wkt, "geometry is not valid WKT"),
        (missing, "empty geometry"),
        (out_of_range, "coordinates are not longitude/latitude (out of range); is the CRS right?"),
        (is_point & bad_radius, "a point needs a radius in metres (0–50000)"),
    )
    decided = no_code | long_code
    for mask, problem in checks:
        for i in np.flatnonzero(mask & ~decided).tolist():
            own[i] = problem
        decided |= mask
    geoms = flat.copy()
    warnings: list[dict[str, Any]] = []
    # polygons: repair the invalid ones, keep the polygonal part of collections
    valid = shapely.is_valid(flat)
    for i in np.flatnonzero(is_polygonal & ~decided & (~valid | (types == _COLLECTION))).tolist():
        if not valid[i]:
            fixed = _polygonal(shapely.make_valid(flat[i]))
            if fixed is None or fixed.is_empty:
                own[i] = "invalid polygon that cannot be repaired"
                continue
            warnings.append({"row": i + 1, "code": codes[i], "warning": "invalid polygon repaired (make_valid)"})
            geoms[i] = fixed
        else:
            geoms[i] = _polygonal(flat[i])
            if geoms[i] is None:
                own[i] = "no polygon in the geometry collection"
    for i in np.flatnonzero(~decided & ~is_point & ~is_polygonal).tolist():
        own[i] = f"{flat[i].geom_type} is not a site shape (use polygons, or points with a radius)"
    multipoints = np.flatnonzero(types == _MULTIPOINT)
    if len(multipoints):
        geoms[multipoints] = shapely.centroid(flat[multipoints])
    if progress:
        progress(0.2, "checking rows")

    # -- a register with one row per visit: the latest row of each code is the site --------------------
    usable = ~no_code & ~long_code & np.array([p is None for p in own], dtype=bool)
    dates = parse_dates(table[date_col]) if date_col is not None else None
    superseded, undated = np.empty(0, dtype=int), 0
    if dates is not None:
        superseded, undated = _latest_rows(codes, usable if latest_by else usable & is_point, dates)
    skip = np.zeros(n, dtype=bool)
    skip[superseded] = True
    if len(date_columns) > 1 and date_col is None:
        point_codes = pd.Series(codes[usable & is_point], dtype=object)
        if point_codes.duplicated().any():
            warnings.append({"row": 0, "code": None, "warning": f"several date columns ({', '.join(map(str, date_columns))}): "
                             "points repeating a code are refused as duplicates; give latest_by (the date column) "
                             "to keep the latest row of each site"})

    # -- rows sharing a code: duplicates refused, other polygons merged (in file order) ----------------
    problems: list[dict[str, Any]] = []
    for i in np.flatnonzero(no_code).tolist():
        problems.append({"row": i + 1, "code": None, "problem": "missing site code"})
    for i in np.flatnonzero(long_code & ~no_code).tolist():
        problems.append({"row": i + 1, "code": codes[i][:40], "problem": "site code longer than 100 characters"})
    candidates = ~no_code & ~long_code & ~skip
    shared = np.zeros(n, dtype=bool)
    shared[candidates] = pd.Series(codes[candidates], dtype=object).duplicated(keep=False).to_numpy()
    accepted = candidates & usable & ~shared
    for i in np.flatnonzero(candidates & ~shared & ~usable).tolist():
        problems.append({"row": i + 1, "code": codes[i], "problem": own[i]})
    first: dict[str, int] = {}
    parts: dict[str, list[BaseGeometry]] = {}
    merged = 0
    for i in np.flatnonzero(shared).tolist():
        code = codes[i]
        if code in first and not (is_polygonal[first[code]] and is_polygonal[i]):
            problems.append({"row": i + 1, "code": code, "problem": f"duplicate code (first on row {first[code] + 1})"})
            continue
        if own[i] is not None:
            problems.append({"row": i + 1, "code": code, "problem": own[i]})
            continue
        if code not in first:
            first[code] = i
            parts[code] = [geoms[i]]
            accepted[i] = True
            continue
        # same code, another polygon: another part of a multi-part site split across rows
        if any(shapely.equals(geoms[i], part) for part in parts[code]):
            problems.append({"row": i + 1, "code": code, "problem": f"duplicate code (first on row {first[code] + 1})"})
            continue
        parts[code].append(geoms[i])
        merged += 1
        warnings.append({"row": i + 1, "code": code, "warning": f"another part of the site on row {first[code] + 1}: "
                         "merged into one multi-polygon"})
    for code, pieces in parts.items():
        if len(pieces) > 1:
            geoms[first[code]] = shapely.union_all(pieces)
    keep = np.flatnonzero(accepted)
    if progress:
        progress(0.3, "checking rows")

    # -- the kept rows, column by column --------------------------------------------------------------
    kept = geoms[keep]
    kb = shapely.bounds(kept)
    rx, ry = (kb[:, 0] + kb[:, 2]) / 2, (kb[:, 1] + kb[:, 3]) / 2
    min_lon, min_lat, max_lon, max_lat = spatial.DRC_BBOX
    outside = ~((rx >= min_lon) & (rx <= max_lon) & (ry >= min_lat) & (ry <= max_lat))
    for j in np.flatnonzero(outside).tolist():
        warnings.append({"row": int(keep[j]) + 1, "code": codes[keep[j]], "warning": f"location ({rx[j]:.5f}, "
                         f"{ry[j]:.5f}) is outside the DRC's bounding box; are longitude and latitude swapped?"})
    points = np.flatnonzero(is_point[keep])
    if len(points):
        centres = kept[points]
        kept[points] = spatial.buffer_points_m(shapely.get_x(centres), shapely.get_y(centres), radii[keep[points]])
    prop_columns = [(str(c), c) for c in source_columns if c not in used]
    prop_columns += [(k, c) for k, c in extra.items() if c is not None]
    properties = _properties(column_at, prop_columns, keep, progress, 0.3, 0.9)
    names = attribute("name")[keep]
    kinds = attribute("kind")[keep]
    minerals = attribute("minerals")[keep]
    territories = attribute("territory")[keep]
    out = gpd.GeoDataFrame({
        "row": keep + 1,
        "code": codes[keep],
        "name": [str(v or c)[:300] for v, c in zip(names, codes[keep], strict=True)],
        "kind": [kind] * len(keep) if kind else _each(kinds, normalise_kind),
        "minerals": [list(m) for m in _each(minerals, _minerals)],
        "territory": [str(v)[:100] if v else None for v in territories],
        "properties": properties,
    }, geometry=gpd.GeoSeries(kept, crs=4326))
    problems.sort(key=lambda p: p["row"])
    warnings.sort(key=lambda w: w["row"])
    result = ReadResult(frame=out, format=fmt, rows_read=n, problems=problems, warnings=warnings, merged=merged,
                        superseded=len(superseded), latest_by=str(date_col) if len(superseded) else None)
    if len(superseded):
        result.warnings.insert(0, {"row": 0, "code": None, "warning": _supersede_note(result, history, undated)})
    if history:
        result.observations = _observations(column_at, codes, superseded, dates, flat, source_columns, cols["code"])
    if progress:
        progress(1.0, "done")
    return result


def _properties(column_at: Callable[[Any, np.ndarray], tuple[np.ndarray, np.ndarray]],
                prop_columns: list[tuple[str, Any]],
                rows: np.ndarray, progress: Progress | None, start: float, end: float) -> list[dict[str, Any]]:
    """Each row's dict of its non-empty cells: the columns converted once each into a table of values
    and one of present flags, then each row's dict built in C (``dict(compress(zip(names, values), flags))``)."""
    names = [name for name, _ in prop_columns]
    values = np.empty((len(rows), len(names)), dtype=object)
    present = np.empty((len(rows), len(names)), dtype=bool)
    for k, (_, c) in enumerate(prop_columns):
        values[:, k], present[:, k] = column_at(c, rows)
        if progress and k % 8 == 7:
            progress(start + (end - start) * 0.8 * (k + 1) / len(names), "cleaning")
    props: list[dict[str, Any]] = []
    for lo in range(0, len(rows), PROPERTY_CHUNK):
        chunk = zip(values[lo:lo + PROPERTY_CHUNK].tolist(), present[lo:lo + PROPERTY_CHUNK].tolist(), strict=True)
        props.extend(dict(compress(zip(names, v, strict=True), p)) for v, p in chunk)
    if progress:
        progress(end, "cleaning")
    return props


def _observations(column_at: Callable[[Any, np.ndarray], tuple[np.ndarray, np.ndarray]], codes: np.ndarray,
                  rows: np.ndarray,
                  dates: pd.Series | None, geoms: np.ndarray, source_columns: list[Any], code_col: Any) -> pd.DataFrame:
    """The superseded rows of a register as observations: code, observed_on (date or None), row, properties
    (every non-empty column but the code, and the point's lon/lat)."""
    props = _properties(column_at, [(str(c), c) for c in source_columns if c != code_col], rows, None, 0, 0)
    points = geoms[rows]
    located = shapely.get_type_id(points) == _POINT
    xs, ys = shapely.get_x(points), shapely.get_y(points)
    for j in np.flatnonzero(located).tolist():
        props[j]["lon"], props[j]["lat"] = round(float(xs[j]), 6), round(float(ys[j]), 6)
    observed = [None if pd.isna(d) else d.date() for d in dates.iloc[rows]] if dates is not None else [None] * len(rows)
    return pd.DataFrame({"code": codes[rows], "observed_on": pd.Series(observed, dtype=object),
                         "row": rows + 1, "properties": pd.Series(props, dtype=object)})


def _supersede_note(result: ReadResult, history: bool, undated: int) -> str:
    """``4,987 rows → 2,991 sites: 1,996 older rows ... (kept as history)``: what a register became."""
    fate = "kept as history" if history else "dropped: import with history to keep them as observations"
    note = (f"{result.rows_read:,} rows → {len(result.frame):,} sites: {result.superseded:,} older rows of repeated "
            f"site codes superseded by the latest row by {result.latest_by} ({fate})")
    if undated:
        note += f"; {undated:,} rows without a readable {result.latest_by} ranked oldest"
    return note


def read_sites(path: Path, *, filename: str | None = None, mapping: str | dict[str, str] | None = None,
               kind: str | None = None, crs: str | None = None, default_radius_m: float | None = 50.0,
               latest_by: str | None = None, history: bool = False, progress: Progress | None = None) -> ReadResult:
    """Read and clean a site file. Raises ``Invalid`` when the file as a whole is unusable.

    See ``clean`` for ``latest_by`` (registers with one row per visit), ``history`` and ``progress``.
    """
    if progress:
        progress(0.0, "reading")
    notes: list[dict[str, Any]] = []
    frame, fmt = read_frame(Path(path), filename=filename, crs=crs, notes=notes)
    if len(frame) == 0:
        raise EmptySiteFile("the file holds no features")
    if fmt == "kml":
        frame = _without_kml_styling(frame)
    if progress:
        progress(0.3, "cleaning")
    preset = isinstance(mapping, str) and mapping.strip().lower() in PRESETS
    step = None if progress is None else (lambda done, what: progress(0.3 + 0.7 * done, what))
    result = clean(frame, mapping=parse_mapping(mapping), kind=kind, default_radius_m=default_radius_m, fmt=fmt,
                   strict=not preset, latest_by=latest_by, history=history, progress=step)
    result.warnings[:0] = notes
    return result


def _without_kml_styling(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A KML's placemarks without the fields that only say how to draw them (``KML_STYLE``) and
    without the optional fields no placemark uses (``KML_OPTIONAL``)."""
    drop = [c for c in frame.columns if c in KML_STYLE
            or (c in KML_OPTIONAL and not cells(frame[c])[1].any())]
    return frame.drop(columns=drop)


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
    # candidates by bounding box, then the test against the (prepared) province: far cheaper than
    # the tree's own predicate, which prepares each site and walks the province's thousands of vertices
    site_idx, prov_idx = tree.query(geoms)
    hit = shapely.intersects(provinces[prov_idx], geoms[site_idx])
    site_idx, prov_idx = site_idx[hit], prov_idx[hit]
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
