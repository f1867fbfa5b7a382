"""Exports of 100,000 site-visit submissions (issue 15): time and peak memory per format.

Seeds a fresh data directory and database (SQLite, or a new PostgreSQL database with ``--pg``) with
the bundled ``asm_site_visit`` form, 500 sites and 100,000 visits (10,000 with ``--quick``) written
with bulk Core inserts: realistic answers for every question of the form's field schema (choices
from its lists, select_multiples, counts, a GPS point, a walked perimeter on one visit in five,
one to three photo names in the photo repeat), each visit mapped onto a site. Then runs the real
CLI as an operator does, one process per export (``asmfield export asm_site_visit --format F --out
PATH``): CSV zip, GeoPackage, XLSX and GeoJSON. Seconds are wall time of the whole command (start-up
included; the start-up alone is the first row), CPU seconds its user + system time; peak RSS is the
command's own (its VmHWM).
Targets (issue 15): CSV zip and GeoPackage under 15 s and under 300 MB each.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from sqlalchemy import insert, select

from app import accounts
from app.blobs import FilesystemBlobStore
from app.composition import build_hooks
from app.db import make_engine, migrate, session_scope
from app.settings import Settings
from bench.harness import _pg, load_average
from forms.demo import install_bundled
from forms.models import Form, FormVersion
from geodata import importers, upsert
from geodata.models import Site
from sync.models import Submission

ROOT = Path(__file__).resolve().parent.parent
FORM = "asm_site_visit"
BATCH = 5_000
SITES = 500
FORMATS = (("csv", "zip"), ("gpkg", "gpkg"), ("xlsx", "xlsx"), ("geojson", "geojson"))
WORDS = ("ras", "accès difficile", "pluie", "coopérative absente", "puits inondés", "marché actif", "contrôle SAEMAPE")


def _answer(field: dict[str, Any], rnd: random.Random, *, lat: float, lon: float, day: datetime, site: str) -> Any:
    """A plausible answer to one question of the field schema (None: left empty)."""
    kind, name = field["type"], field["name"]
    choices = field.get("choices") or []
    if name == "site_id":
        return site
    if kind == "select1":
        return rnd.choice(choices) if choices else None
    if kind == "select":
        return sorted(rnd.sample(choices, rnd.randint(0, min(3, len(choices))))) if choices else []
    if kind == "int":
        return rnd.randint(0, 400) if name == "workers_total" else rnd.randint(0, 12)
    if kind == "decimal":
        return round(rnd.uniform(0, 60), 1)
    if kind == "date":
        return day.date().isoformat()
    if kind == "dateTime":
        return day.isoformat()
    if kind == "geopoint":
        return f"{lat:.6f} {lon:.6f} {rnd.uniform(300, 1500):.1f} {rnd.uniform(3, 20):.1f}"
    if kind == "geoshape":
        if rnd.random() > 0.2:
            return None
        d = 0.002
        ring = [(lat, lon), (lat, lon + d), (lat - d, lon + d), (lat - d, lon), (lat, lon)]
        return ";".join(f"{a:.6f} {b:.6f} 0 0" for a, b in ring)
    if kind == "binary":
        return f"{uuid.UUID(int=rnd.getrandbits(128)).hex[:12]}.jpg"
    if kind == "string":
        return rnd.choice(WORDS) if rnd.random() < 0.5 else None
    return None


def _data(fields: list[dict[str, Any]], rnd: random.Random, **kwargs: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in fields:
        if f["kind"] == "field" and f["repeat"] is None:
            value = _answer(f, rnd, **kwargs)
            if value is not None:
                data[f["path"]] = value
        elif f["kind"] == "repeat" and f["repeat"] is None:
            inner = [g for g in fields if g["kind"] == "field" and g["repeat"] == f["path"]]
            count = rnd.randint(1, 3) if f["name"] == "site_photos" else rnd.randint(0, 1)
            items = [{g["path"]: _answer(g, rnd, **kwargs) for g in inner} for _ in range(count)]
            if items:
                data[f["path"]] = items
    return data


def _seed(settings: Settings, n: int) -> None:
    engine = make_engine(settings)
    migrate(engine)
    blobs = FilesystemBlobStore(settings.media_path)
    rnd = random.Random(15)
    with session_scope(engine) as s:
        org = accounts.create_organisation(s, name="Bench", kind="coordinator")
        user = accounts.create_user(s, username="bench", password="bench-Password-2026!", role="monitor",
                                    organisation=org.id)
        install_bundled(s, blobs=blobs, settings=settings, hooks=build_hooks())
        form_id, version_id, fields = s.execute(
            select(Form.id, FormVersion.id, FormVersion.fields).join(FormVersion, FormVersion.form_id == Form.id)
            .where(Form.xml_form_id == FORM)).one()
        user_id = user.id
        centres = [(rnd.uniform(22.0, 29.0), rnd.uniform(-11.5, -2.0)) for _ in range(SITES)]
        frame = gpd.GeoDataFrame({"code": [f"CD-{i:05d}" for i in range(SITES)],
                                  "name": [f"Site minier {i}" for i in range(SITES)], "kind": ["asm_site"] * SITES},
                                 geometry=[shapely.box(x - 0.01, y - 0.01, x + 0.01, y + 0.01) for x, y in centres],
                                 crs=4326)
        upsert.upsert_sites(s, read=importers.clean(frame), settings=settings, blobs=blobs)
        site_ids = dict(s.execute(select(Site.code, Site.id)).all())
    xml = "<asm_site_visit/>"  # exports never read the XML; the column must only be filled
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for first in range(0, n, BATCH):
            rows = []
            for i in range(first, min(n, first + BATCH)):
                site = rnd.randrange(SITES)
                lon, lat = centres[site][0] + rnd.uniform(-0.005, 0.005), centres[site][1] + rnd.uniform(-0.005, 0.005)
                day = start + timedelta(minutes=7 * i)
                iid = f"uuid:{uuid.UUID(int=rnd.getrandbits(128))}"
                code = f"CD-{site:05d}"
                rows.append({"instance_id": iid, "root_instance_id": iid, "current": True, "form_id": form_id,
                             "form_version_id": version_id, "submitted_by_user_id": user_id, "received_at": day,
                             "updated_at": day, "xml_sha256": hashlib.sha256(iid.encode()).hexdigest(), "xml": xml,
                             "data": _data(fields, rnd, lat=lat, lon=lon, day=day, site=code),
                             "lon": lon, "lat": lat, "site_id": site_ids[code], "site_match": "inside",
                             "attachments_expected": 0, "attachments_present": 0, "complete": True,
                             "review_state": "received", "restricted": False})
            conn.execute(insert(Submission), rows)
    if settings.is_sqlite:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


#: The child reports its own peak RSS (VmHWM of its address space after exec): ``wait4``'s ru_maxrss would
#: count the parent's memory copied at fork time, i.e. this benchmark's seeded data.
_CHILD = ("import atexit, sys\n"
          "atexit.register(lambda: sys.stderr.write(next(l for l in open('/proc/self/status') "
          "if l.startswith('VmHWM')) ))\n"
          "from app.cli import main\nmain()\n")


def _cli(settings: Settings, *args: str) -> tuple[float, float, int]:
    """Run ``asmfield ARGS`` in its own process: (wall seconds, CPU seconds, peak RSS bytes of that process).

    CPU seconds (user + system, from ``wait4``) say what the export costs whatever else the machine
    runs: on an idle machine the wall time of a one-thread export is close to them.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASMFIELD_")}
    env |= {"ASMFIELD_DATA_DIR": str(settings.data_dir), "ASMFIELD_DATABASE_URL": settings.db_url}
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-c", _CHILD, *args], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"asmfield {' '.join(args)} failed:\n{stderr}")
    hwm = next(line for line in stderr.splitlines() if line.startswith("VmHWM"))
    return elapsed, usage.ru_utime + usage.ru_stime, int(hwm.split()[1]) * 1024


def main(pg_url: str | None = None, quick: bool = False) -> list[dict]:
    n = 10_000 if quick else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="asmfield-exportbench-"))
    db_name = None
    try:
        database_url = None
        if pg_url:
            db_name = f"asmfield_ex_{uuid.uuid4().hex[:8]}"
            _pg(pg_url, f'CREATE DATABASE "{db_name}"')
            database_url = pg_url.rsplit("/", 1)[0] + f"/{db_name}"
        settings = Settings(data_dir=tmp / "server", database_url=database_url)
        settings.ensure_secret()
        t = time.perf_counter()
        _seed(settings, n)
        print(f"seeded {n:,} visits of {FORM} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        db_label = "PostgreSQL" if pg_url else "SQLite"
        seconds, cpu, rss = _cli(settings, "--help")
        rows = [{"database": db_label, "export": "CLI start-up only (asmfield --help)", "seconds": f"{seconds:.1f}",
                 "CPU s": f"{cpu:.1f}", "peak RSS MB": f"{rss / 1e6:.0f}", "load": f"{load_average():.1f}"}]
        for fmt, ext in FORMATS:
            out = tmp / f"visits.{ext}"
            seconds, cpu, rss = _cli(settings, "export", FORM, "--format", fmt, "--out", str(out))
            rows.append({"database": db_label, "export": fmt, "submissions": f"{n:,}",
                         "file MB": f"{out.stat().st_size / 1e6:.1f}", "seconds": f"{seconds:.1f}",
                         "CPU s": f"{cpu:.1f}", "peak RSS MB": f"{rss / 1e6:.0f}", "load": f"{load_average():.1f}"})
            print(rows[-1], file=sys.stderr)
        return rows
    finally:
        if db_name:
            _pg(pg_url, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    for row in main(sys.argv[1] if len(sys.argv) > 1 else None, quick="--quick" in sys.argv):
        print(row)
