"""Pure geometry: point → site matching in metres, buffering in metres, GeoJSON helpers.

No FastAPI, no database. Geometries are EPSG:4326 (lon, lat). Distances are measured in the
UTM zone of each *point* (the DRC spans zones 33–36, north and south): points are grouped by
zone, and the point and its candidate polygons are projected into that zone, where a metre
error is below 0.1 % within the zone. Everything is vectorised with shapely 2 (STRtree), so a
million points cost a few array operations, not a million Python calls.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

#: Generous bounding box of the DRC (lon/lat); points outside are probably swapped or wrong.
DRC_BBOX = (12.0, -13.6, 31.4, 5.5)
#: Metres per degree of latitude (lower bound) — used to turn a metre tolerance into degrees.
M_PER_DEG = 110_574.0


def in_drc_bbox(lon: float, lat: float) -> bool:
    min_lon, min_lat, max_lon, max_lat = DRC_BBOX
    return min_lon <= lon <= max_lon and min_lat <= lat <= max_lat


def utm_epsg(lon: np.ndarray | float, lat: np.ndarray | float) -> np.ndarray:
    """EPSG code of the WGS 84 UTM zone of each point (326xx north, 327xx south)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    zone = np.clip(np.floor((lon + 180.0) / 6.0).astype(int) + 1, 1, 60)
    return np.where(lat >= 0, 32600, 32700) + zone


@lru_cache(maxsize=32)
def _transformer(epsg: int, inverse: bool = False) -> Transformer:
    if inverse:
        return Transformer.from_crs(epsg, 4326, always_xy=True)
    return Transformer.from_crs(4326, epsg, always_xy=True)


def project(geoms: np.ndarray | BaseGeometry, epsg: int, *, inverse: bool = False):  # noqa: ANN201
    """Project EPSG:4326 geometries into ``epsg`` (or back with ``inverse``), vectorised."""
    tr = _transformer(int(epsg), inverse)

    def _xy(coords: np.ndarray) -> np.ndarray:
        if len(coords) == 0:
            return coords
        x, y = tr.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, _xy)


def buffer_points_m(lons: np.ndarray, lats: np.ndarray, radii_m: np.ndarray) -> np.ndarray:
    """Circles of ``radii_m`` metres around points, as EPSG:4326 polygons (buffered in UTM)."""
    lons, lats, radii = (np.asarray(a, dtype=float) for a in (lons, lats, radii_m))
    out = np.empty(len(lons), dtype=object)
    epsgs = utm_epsg(lons, lats)
    for epsg in np.unique(epsgs):
        sel = np.nonzero(epsgs == epsg)[0]
        pts = project(shapely.points(lons[sel], lats[sel]), int(epsg))
        out[sel] = project(shapely.buffer(pts, radii[sel], quad_segs=8), int(epsg), inverse=True)
    return out


def area_m2(geoms: np.ndarray) -> np.ndarray:
    """Area in square metres of EPSG:4326 polygons (each in the UTM zone of its centroid)."""
    geoms = np.asarray(geoms, dtype=object)
    out = np.zeros(len(geoms))
    if len(geoms) == 0:
        return out
    cent = shapely.centroid(geoms)
    epsgs = utm_epsg(shapely.get_x(cent), shapely.get_y(cent))
    for epsg in np.unique(epsgs):
        sel = np.nonzero(epsgs == epsg)[0]
        out[sel] = shapely.area(project(geoms[sel], int(epsg)))
    return out


def point_distance_m(lon: float, lat: float, geom: BaseGeometry) -> float:
    """Distance in metres from a point to a geometry (0 inside)."""
    epsg = int(utm_epsg(lon, lat))
    return float(shapely.distance(project(shapely.Point(lon, lat), epsg), project(geom, epsg)))


def to_geojson(geom: BaseGeometry, *, precision: int = 6) -> str:
    """Compact GeoJSON geometry text (coordinates rounded to ~0.1 m)."""
    return json.dumps(mapping(shapely.set_precision(geom, 10**-precision) if precision else geom),
                      separators=(",", ":"))


def from_geojson(text: str) -> BaseGeometry:
    return shape(json.loads(text))


@dataclass
class MatchResult:
    """Per point: index of the matched geometry (-1 none), distance in metres, inside or not."""

    index: np.ndarray
    distance_m: np.ndarray
    inside: np.ndarray


@dataclass
class SiteIndex:
    """An STRtree over site polygons (EPSG:4326), with per-UTM-zone projections made lazily.

    ``ids`` are the caller's identifiers (e.g. database ids); results index into them.
    """

    geoms: np.ndarray
    ids: np.ndarray
    tree: shapely.STRtree = field(init=False)
    _areas: np.ndarray = field(init=False)
    _bounds: np.ndarray = field(init=False)
    _projected: dict[int, np.ndarray] = field(init=False, default_factory=dict)
    _grown: tuple[float, tuple] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.geoms = np.asarray(self.geoms, dtype=object)
        self.ids = np.asarray(self.ids)
        shapely.prepare(self.geoms)
        self.tree = shapely.STRtree(self.geoms)
        self._areas = shapely.area(self.geoms) if len(self.geoms) else np.zeros(0)
        self._bounds = shapely.bounds(self.geoms) if len(self.geoms) else np.zeros((0, 4))

    def __len__(self) -> int:
        return len(self.geoms)

    def projected(self, epsg: int) -> np.ndarray:
        if epsg not in self._projected:
            self._projected[epsg] = project(self.geoms, epsg)
        return self._projected[epsg]

    def containing(self, lons: np.ndarray, lats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All (point index, geometry index) pairs where the geometry contains or touches the point."""
        if len(self.geoms) == 0 or len(lons) == 0:
            return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
        pts = shapely.points(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
        pi, gi = self.tree.query(pts, predicate="intersects")
        return pi, gi

    def _grid(self, deg: float) -> tuple:
        """A uniform grid over the site envelopes grown by ``deg`` (cell → sites, as sorted arrays):
        candidate pairs for a million points come from a few numpy operations, no point objects."""
        key = round(deg, 7)
        if self._grown is not None and self._grown[0] == key:
            return self._grown[1]
        b = shapely.bounds(self.geoms)
        b = np.column_stack([b[:, 0] - key, b[:, 1] - key, b[:, 2] + key, b[:, 3] + key])
        size = float(np.median(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])))
        size = max(size, 1e-5)
        x0, y0 = float(b[:, 0].min()), float(b[:, 1].min())
        # cap the cells one huge polygon may cover; a coarser grid only means more candidates
        while True:
            ix0 = np.floor((b[:, 0] - x0) / size).astype(np.int64)
            ix1 = np.floor((b[:, 2] - x0) / size).astype(np.int64)
            iy0 = np.floor((b[:, 1] - y0) / size).astype(np.int64)
            iy1 = np.floor((b[:, 3] - y0) / size).astype(np.int64)
            counts = (ix1 - ix0 + 1) * (iy1 - iy0 + 1)
            if counts.sum() <= 50 * len(self.geoms) + 1_000_000:
                break
            size *= 2
        nx = int(ix1.max()) + 1
        total = int(counts.sum())
        site = np.repeat(np.arange(len(self.geoms)), counts)
        local = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        width = np.repeat(ix1 - ix0 + 1, counts)
        cell = (np.repeat(iy0, counts) + local // width) * nx + np.repeat(ix0, counts) + local % width
        order = np.argsort(cell, kind="stable")
        cell, site = cell[order], site[order]
        cells, first, per_cell = np.unique(cell, return_index=True, return_counts=True)
        grid = (b, size, x0, y0, nx, cells, first, per_cell, site)
        self._grown = (key, grid)
        return grid

    def _candidates(self, lons: np.ndarray, lats: np.ndarray, valid: np.ndarray, deg: float
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(point, site) pairs whose grown envelope holds the point."""
        b, size, x0, y0, nx, cells, first, per_cell, site = self._grid(deg)
        ix = np.floor((np.where(valid, lons, x0 - 1) - x0) / size)
        iy = np.floor((np.where(valid, lats, y0 - 1) - y0) / size)
        ok = valid & (ix >= 0) & (iy >= 0) & (ix < nx)
        pcell = np.where(ok, iy * nx + ix, -1).astype(np.int64)
        pos = np.clip(np.searchsorted(cells, pcell), 0, max(len(cells) - 1, 0))
        hit = ok & (cells[pos] == pcell) if len(cells) else np.zeros(len(lons), dtype=bool)
        points = np.nonzero(hit)[0]
        cnt = per_cell[pos[points]]
        pi = np.repeat(points, cnt)
        offs = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        gi = site[np.repeat(first[pos[points]], cnt) + offs]
        x, y = lons[pi], lats[pi]
        inside_box = (b[gi, 0] <= x) & (x <= b[gi, 2]) & (b[gi, 1] <= y) & (y <= b[gi, 3])
        return pi[inside_box], gi[inside_box]

    def match(self, lons: np.ndarray, lats: np.ndarray, tolerance_m: float) -> MatchResult:
        """Map each point to the polygon containing it, else the nearest within ``tolerance_m``.

        A point on a shared border (or in overlapping polygons) goes to the smallest polygon,
        ties to the lowest index, so the answer is deterministic.
        """
        lons = np.asarray(lons, dtype=float)
        lats = np.asarray(lats, dtype=float)
        n = len(lons)
        index = np.full(n, -1, dtype=np.int64)
        dist = np.full(n, np.nan)
        inside = np.zeros(n, dtype=bool)
        if n == 0 or len(self.geoms) == 0:
            return MatchResult(index, dist, inside)
        valid = np.isfinite(lons) & np.isfinite(lats)
        if tolerance_m > 0:
            # coarse candidates in degrees (conservative for the latitude), exact metres afterwards
            # latitude bound in 5° steps (at least 15°, the DRC): the grid is reused across calls
            max_lat = float(np.max(np.abs(np.where(valid, lats, 0.0))))
            lat_bound = min(max(15.0, math.ceil(max_lat / 5.0) * 5.0), 85.0)
            deg = tolerance_m / (M_PER_DEG * math.cos(math.radians(lat_bound))) * 1.05
            pi, gi = self._candidates(lons, lats, valid, deg)
            hit = shapely.intersects_xy(self.geoms[gi], lons[pi], lats[pi])
        else:
            pts = shapely.points(np.where(valid, lons, 0.0), np.where(valid, lats, 0.0))
            pts[~valid] = None
            pi, gi = self.tree.query(pts, predicate="intersects")
            hit = np.ones(len(pi), dtype=bool)
        hp, hg = pi[hit], gi[hit]
        if len(hp):
            # smallest area first, then lowest index; first occurrence per point wins
            order = np.lexsort((hg, self._areas[hg], hp))
            hp, hg = hp[order], hg[order]
            first = np.ones(len(hp), dtype=bool)
            first[1:] = hp[1:] != hp[:-1]
            index[hp[first]] = hg[first]
            dist[hp[first]] = 0.0
            inside[hp[first]] = True
        if tolerance_m <= 0:
            return MatchResult(index, dist, inside)
        near = ~hit & ~inside[pi]
        pidx, gi = pi[near], gi[near]
        # drop pairs whose site envelope is already farther than the tolerance (a lower bound in metres)
        bounds = self._bounds
        x, y = lons[pidx], lats[pidx]
        dx = np.maximum(np.maximum(bounds[gi, 0] - x, x - bounds[gi, 2]), 0.0) * (110_900 * np.cos(np.radians(y)))
        dy = np.maximum(np.maximum(bounds[gi, 1] - y, y - bounds[gi, 3]), 0.0) * 110_500
        close = dx * dx + dy * dy <= tolerance_m * tolerance_m
        pidx, gi = pidx[close], gi[close]
        if len(pidx) == 0:
            return MatchResult(index, dist, inside)
        epsgs = utm_epsg(lons[pidx], lats[pidx])
        pair_d = np.empty(len(pidx))
        for epsg in np.unique(epsgs):
            sel = np.nonzero(epsgs == epsg)[0] if len(np.unique(epsgs)) > 1 else slice(None)
            x, y = _transformer(int(epsg)).transform(lons[pidx[sel]], lats[pidx[sel]])
            pair_d[sel] = shapely.distance(shapely.points(x, y), self.projected(int(epsg))[gi[sel]])
        keep = pair_d <= tolerance_m
        pidx, gi, pair_d = pidx[keep], gi[keep], pair_d[keep]
        if len(pidx):
            order = np.lexsort((gi, pair_d, pidx))
            pidx, gi, pair_d = pidx[order], gi[order], pair_d[order]
            first = np.ones(len(pidx), dtype=bool)
            first[1:] = pidx[1:] != pidx[:-1]
            index[pidx[first]] = gi[first]
            dist[pidx[first]] = pair_d[first]
        return MatchResult(index, dist, inside)

    def distances_m(self, lons: np.ndarray, lats: np.ndarray, geom_index: np.ndarray) -> np.ndarray:
        """Metres from each point to the given geometry (pairwise), e.g. to a site named in the form."""
        lons = np.asarray(lons, dtype=float)
        lats = np.asarray(lats, dtype=float)
        geom_index = np.asarray(geom_index, dtype=np.int64)
        out = np.full(len(lons), np.nan)
        if len(lons) == 0:
            return out
        epsgs = utm_epsg(lons, lats)
        for epsg in np.unique(epsgs):
            sel = np.nonzero(epsgs == epsg)[0]
            ppts = project(shapely.points(lons[sel], lats[sel]), int(epsg))
            out[sel] = shapely.distance(ppts, self.projected(int(epsg))[geom_index[sel]])
        return out


def naive_sjoin_nearest(lons: np.ndarray, lats: np.ndarray, geoms: np.ndarray, tolerance_m: float):  # noqa: ANN201
    """The straightforward geopandas way (for benchmarks): sjoin, then sjoin_nearest in one UTM zone."""
    import geopandas as gpd

    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lons, lats), crs=4326)
    polys = gpd.GeoDataFrame({"site": np.arange(len(geoms))}, geometry=list(geoms), crs=4326)
    joined = gpd.sjoin(pts, polys, how="left", predicate="intersects")
    joined = joined[~joined.index.duplicated()]
    missing = joined["site"].isna()
    epsg = int(utm_epsg(float(np.mean(lons)), float(np.mean(lats))))
    near = gpd.sjoin_nearest(pts[missing.values].to_crs(epsg), polys.to_crs(epsg), how="left",
                             max_distance=tolerance_m, distance_col="d")
    return joined, near
