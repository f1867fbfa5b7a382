"""Read and import a wide point register: 100,000 rows × 80 columns (one row per visit, ≈60,000
sites, a visit date), as CSV and as GeoPackage (issue 14, item 8: target read + clean under 10 s).

Times ``importers.read_sites`` alone (read + clean: the file readers) and the full
``upsert.import_file`` (read, clean, upsert, re-map, restage, republish) into an empty database,
each in a fresh process so that the peak RSS is the step's own. "CPU s" is the step's own processor
time (PostgreSQL's work not included): on a shared machine it says more than the wall clock.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

SECRET = "bench-secret-key-0123456789abcdef"
MINERALS = np.array(["gold", "cassiterite", "coltan", "copper", "cobalt", "wolframite", "diamond"])


def register(n_rows: int, n_cols: int = 80, *, seed: int = 14) -> gpd.GeoDataFrame:
    """A site register as NGOs keep them: one row per visit (codes repeat), a visit date in
    dd/mm/yyyy, and ``n_cols`` columns in all (text, numbers, yes/no, dates, many cells empty)."""
    rng = np.random.default_rng(seed)
    n_sites = max(1, int(n_rows * 0.6))
    site = np.concatenate([np.arange(n_sites), rng.integers(0, n_sites, n_rows - n_sites)])
    rng.shuffle(site)
    lon0 = rng.uniform(22.0, 29.0, n_sites)
    lat0 = rng.uniform(-11.5, -2.0, n_sites)
    days = rng.integers(0, 3650, n_rows)
    dates = pd.Timestamp("2015-01-01") + pd.to_timedelta(days, unit="D")
    data: dict[str, object] = {
        "pcode": [f"CD-{s:06d}" for s in site],
        "name": [f"Site {s}" for s in site],
        "vdate": dates.strftime("%d/%m/%Y"),
        "mineral1": MINERALS[site % len(MINERALS)],
        "territoire": np.array(["Kolwezi", "Mutshatsha", "Lubudi", "Fungurume", "Kambove"])[site % 5],
    }
    fixed = len(data) + 1  # + the geometry (lon/lat in a CSV)
    for j in range(max(0, n_cols - fixed)):
        kind = j % 5
        if kind == 0:
            col = rng.integers(0, 500, n_rows).astype(float)
            col[rng.random(n_rows) < 0.3] = np.nan
        elif kind == 1:
            col = np.where(rng.random(n_rows) < 0.5, "oui", "non").astype(object)
            col[rng.random(n_rows) < 0.2] = None
        elif kind == 2:
            col = np.array([f"observation {k}" for k in range(50)], dtype=object)[rng.integers(0, 50, n_rows)]
            col[rng.random(n_rows) < 0.6] = None
        elif kind == 3:
            col = rng.normal(100, 30, n_rows).round(2)
        else:
            col = rng.integers(0, 20, n_rows)
        data[f"q{j:02d}"] = col
    lons = lon0[site] + rng.normal(0, 0.0005, n_rows)
    lats = lat0[site] + rng.normal(0, 0.0005, n_rows)
    return gpd.GeoDataFrame(data, geometry=gpd.points_from_xy(lons, lats), crs=4326)


def write(frame: gpd.GeoDataFrame, folder: Path) -> dict[str, Path]:
    csv = folder / "register.csv"
    table = pd.DataFrame(frame.drop(columns="geometry"))
    table.insert(2, "longitude", frame.geometry.x.round(6))
    table.insert(3, "latitude", frame.geometry.y.round(6))
    table.to_csv(csv, index=False)
    gpkg = folder / "register.gpkg"
    frame.to_file(gpkg, driver="GPKG", layer="register")
    return {"csv": csv, "gpkg": gpkg}


def _read_only(path: str) -> dict:
    from geodata import importers  # reason: only in the step it measures

    t, cpu = time.perf_counter(), time.process_time()
    read = importers.read_sites(Path(path))
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "rows": read.rows_read, "sites": len(read.frame), "superseded": read.superseded}


def _full_import(path: str, data_dir: str, database_url: str | None) -> dict:
    from app.blobs import FilesystemBlobStore  # reason: only in the step it measures
    from app.db import make_engine, migrate, session_scope  # reason: only in the step it measures
    from app.settings import Settings  # reason: only in the step it measures
    from geodata import upsert  # reason: only in the step it measures

    settings = Settings(data_dir=Path(data_dir), secret_key=SECRET, database_url=database_url)
    engine = make_engine(settings)
    migrate(engine)
    t, cpu = time.perf_counter(), time.process_time()
    with session_scope(engine) as s:
        report = upsert.import_file(s, path=Path(path), settings=settings,
                                    blobs=FilesystemBlobStore(settings.media_path))
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    engine.dispose()
    return {"seconds": seconds, "cpu": cpu, "rows": report["rows"], "sites": report["created"]}


def _child(step: str, *args: str | None) -> dict:
    """Run one step in a fresh interpreter; its result and peak RSS (MB)."""
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak, copied at fork, across exec
    code = ("import json, re, sys; from bench import geodata_import as b; "
            f"r = b.{step}(*json.loads(sys.argv[1])); "
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()); "
            "r['peak_rss_mb'] = int(hwm.group(1)) / 1024; print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], check=True, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(pg_url: str | None = None, quick: bool = False) -> list[dict]:
    from bench.harness import _pg  # reason: heavy; step children skip it

    n = 10_000 if quick else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="asmfield-importbench-"))
    rows = []
    try:
        t = time.perf_counter()
        files = write(register(n), tmp)
        print(f"generated {n:,} rows × 80 columns in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        for fmt, path in files.items():
            size = f"{path.stat().st_size / 1e6:.0f}"
            read = _child("_read_only", str(path))
            rows.append({"file": f"{n:,} × 80 {fmt}", "MB": size, "step": "read_sites (read + clean)",
                         "s": f"{read['seconds']:.1f}", "CPU s": f"{read['cpu']:.1f}", "peak RSS MB": f"{read['peak_rss_mb']:.0f}",
                         "sites": f"{read['sites']:,}", "older rows": f"{read['superseded']:,}"})
            db_name = database_url = None
            if pg_url:
                db_name = f"asmfield_importbench_{uuid.uuid4().hex[:10]}"
                _pg(pg_url, f'CREATE DATABASE "{db_name}"')
                database_url = pg_url.rsplit("/", 1)[0] + f"/{db_name}"
            data_dir = tmp / f"data-{fmt}"
            try:
                full = _child("_full_import", str(path), str(data_dir), database_url)
            finally:
                if db_name:
                    _pg(pg_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                shutil.rmtree(data_dir, ignore_errors=True)
            rows.append({"file": f"{n:,} × 80 {fmt}", "MB": size, "step": "import_file (empty database)",
                         "s": f"{full['seconds']:.1f}", "CPU s": f"{full['cpu']:.1f}", "peak RSS MB": f"{full['peak_rss_mb']:.0f}",
                         "sites": f"{full['sites']:,}"})
        return rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(main(quick="--quick" in sys.argv), indent=2))
