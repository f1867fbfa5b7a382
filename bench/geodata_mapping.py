"""Map 1,000,000 GPS points onto 10,000 site polygons (target < 3 s), against a naive geopandas
``sjoin`` + ``sjoin_nearest`` run in the same process. Pure computation: no database."""

from __future__ import annotations

import statistics
import time

import numpy as np
import shapely

from geodata import spatial


def polygons(n: int, seed: int = 1) -> np.ndarray:
    """``n`` site-like polygons (squares of 100–600 m and circles) spread over the copper belt."""
    rng = np.random.default_rng(seed)
    lon = rng.uniform(25.0, 28.0, n)
    lat = rng.uniform(-12.0, -10.0, n)
    half = rng.uniform(0.0005, 0.003, n)
    boxes = shapely.box(lon - half, lat - half, lon + half, lat + half)
    circles = spatial.buffer_points_m(lon, lat, half * 111_000)
    return np.where(rng.random(n) < 0.5, boxes, circles)


def points(n: int, geoms: np.ndarray, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Half of the points near a site (GPS within ~400 m of its centre), half anywhere in the belt."""
    rng = np.random.default_rng(seed)
    cent = shapely.centroid(geoms)
    pick = rng.integers(0, len(geoms), n // 2)
    near_lon = shapely.get_x(cent)[pick] + rng.normal(0, 0.003, n // 2)
    near_lat = shapely.get_y(cent)[pick] + rng.normal(0, 0.003, n // 2)
    far_lon = rng.uniform(25.0, 28.0, n - n // 2)
    far_lat = rng.uniform(-12.0, -10.0, n - n // 2)
    return np.concatenate([near_lon, far_lon]), np.concatenate([near_lat, far_lat])


def timed(fn, repeat: int) -> float:  # noqa: ANN001
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main(pg_url: str | None = None, quick: bool = False) -> list[dict]:
    if pg_url:
        return []  # no database involved; the SQLite run covers it
    n_points = 100_000 if quick else 1_000_000
    n_sites = 10_000
    geoms = polygons(n_sites)
    lons, lats = points(n_points, geoms)
    t = time.perf_counter()
    index = spatial.SiteIndex(geoms, np.arange(n_sites))
    build = time.perf_counter() - t
    ours = timed(lambda: index.match(lons, lats, 250.0), 1 if quick else 3)
    result = index.match(lons, lats, 250.0)
    naive = timed(lambda: spatial.naive_sjoin_nearest(lons, lats, geoms, 250.0), 1)
    return [{
        "points": f"{n_points:,}", "sites": f"{n_sites:,}", "index build s": f"{build:.2f}",
        "match s (median)": f"{ours:.2f}", "inside": int(result.inside.sum()),
        "nearest ≤250 m": int(((result.index >= 0) & ~result.inside).sum()),
        "naive sjoin+sjoin_nearest s": f"{naive:.2f}", "ratio naive/ours": f"{naive / ours:.1f}×",
    }]


if __name__ == "__main__":
    import json

    print(json.dumps(main(quick=False), indent=2))
