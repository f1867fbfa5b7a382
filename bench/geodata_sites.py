"""Import 10,000 site polygons from a GeoJSON file, then ``GET /api/v1/sites`` for all of them
(target under 300 ms), through the real service and the real app (in process), on SQLite or PostgreSQL."""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd

from bench.geodata_mapping import polygons

SECRET = "bench-secret-key-0123456789abcdef"


def main(pg_url: str | None = None, quick: bool = False) -> list[dict]:
    from fastapi.testclient import TestClient

    from app import accounts
    from app.blobs import FilesystemBlobStore
    from app.db import make_engine, migrate, session_scope
    from app.main import create_app
    from app.settings import Settings
    from bench.harness import _pg
    from geodata import upsert

    n = 1_000 if quick else 10_000
    tmp = Path(tempfile.mkdtemp(prefix="asmfield-geobench-"))
    db_name = None
    try:
        database_url = None
        if pg_url:
            db_name = f"asmfield_geobench_{uuid.uuid4().hex[:10]}"
            _pg(pg_url, f'CREATE DATABASE "{db_name}"')
            database_url = pg_url.rsplit("/", 1)[0] + f"/{db_name}"
        settings = Settings(data_dir=tmp / "data", secret_key=SECRET, database_url=database_url)
        engine = make_engine(settings)
        migrate(engine)
        with session_scope(engine) as s:
            org = accounts.create_organisation(s, name="Bench", kind="coordinator")
            admin = accounts.create_user(s, username="bench_admin", password="bench-Password-2026!", role="admin",
                                         organisation=org.id)
            _, token = accounts.create_api_token(s, user=admin, name="bench")
        geoms = polygons(n, seed=7)
        path = tmp / "sites.geojson"
        gpd.GeoDataFrame({"code": [f"CD-LU-{i:06d}" for i in range(n)], "name": [f"Site {i}" for i in range(n)]},
                         geometry=geoms, crs=4326).to_file(path, driver="GeoJSON")
        size_mb = path.stat().st_size / 1e6
        blobs = FilesystemBlobStore(settings.media_path)
        t = time.perf_counter()
        with session_scope(engine) as s:
            report = upsert.import_file(s, path=path, settings=settings, blobs=blobs)
        first = time.perf_counter() - t
        t = time.perf_counter()
        with session_scope(engine) as s:
            again = upsert.import_file(s, path=path, settings=settings, blobs=blobs)
        update = time.perf_counter() - t
        assert report["created"] == n and again["unchanged"] == n
        app = create_app(settings)
        headers = {"Authorization": f"Bearer {token}"}
        rows = [{"sites": f"{n:,}", "file MB": f"{size_mb:.1f}", "import s": f"{first:.2f}",
                 "re-import (unchanged) s": f"{update:.2f}"}]
        with TestClient(app) as client:
            for label, url in (("GET /api/v1/sites", "/api/v1/sites"),
                               ("GET /api/v1/sites?simplify=50", "/api/v1/sites?simplify=50")):
                t = time.perf_counter()
                client.get(url, headers=headers)  # first request: warms token cache, imports, simplify cache
                cold = time.perf_counter() - t
                uncached, cached = [], []
                for _ in range(3 if quick else 7):
                    app.state.site_index.forget_site_lists()  # rebuild the body (as after any change of sites or stages)
                    t = time.perf_counter()
                    r = client.get(url, headers=headers)
                    uncached.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    r = client.get(url, headers=headers)
                    cached.append(time.perf_counter() - t)
                    assert r.status_code == 200
                rows.append({"sites": f"{n:,}", "request": label, "first ms": f"{cold * 1000:.0f}",
                             "rebuilt median ms": f"{statistics.median(uncached) * 1000:.0f}",
                             "cached median ms": f"{statistics.median(cached) * 1000:.0f}",
                             "response MB": f"{len(r.content) / 1e6:.1f}"})
        app.state.engine.dispose()
        engine.dispose()
        return rows
    finally:
        if db_name:
            _pg(pg_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))

