"""Backup and restore of 100,000 site-visit submissions with photos (issue 15): time and peak memory.

Seeds a fresh data directory and database (SQLite, or a new PostgreSQL database with ``--pg``) with
one real visit form and 100,000 submissions (10,000 with ``--quick``) written with bulk Core
inserts — rows shaped like the ingest service's (XML, typed data, a geopoint each) — and 1,000
attached "photos" (100 KB of random bytes each: incompressible like JPEGs; the backup never decodes
them). Then backs up to a directory and to a ``.tar.gz``, verifies each and restores each into an
empty data directory / database, each operation in its own process calling what ``asmfield backup``,
``backup --verify`` and ``restore`` call; seconds are timed inside that process (the CLI start-up and
its imports left out), peak RSS is that of the process or of pg_dump / pg_restore (``wait4``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import insert

from app import accounts
from app.blobs import FilesystemBlobStore
from app.db import make_engine, migrate, session_scope
from app.settings import Settings
from bench.harness import _pg, load_average
from sync.models import Blob, Submission, SubmissionAttachment, SubmissionGeopoint
from tests.factories import add_form, visit_data, visit_xml

ROOT = Path(__file__).resolve().parent.parent
PHOTO_BYTES = 100_000
BATCH = 5_000


def _seed(settings: Settings, n: int, photos: int) -> None:
    engine = make_engine(settings)
    migrate(engine)
    blobs = FilesystemBlobStore(settings.media_path)
    with session_scope(engine) as s:
        org = accounts.create_organisation(s, name="Bench", kind="coordinator")
        user = accounts.create_user(s, username="bench", password="bench-Password-2026!", role="monitor",
                                    organisation=org.id)
        form, version = add_form(s, blobs=blobs, settings=settings)
        ids = (form.id, version.id, user.id)
        template_xml = visit_xml(version, "uuid:TEMPLATE", photo_name="site.jpg").decode()
    rnd = random.Random(15)
    with engine.begin() as conn:
        for start in range(0, n, BATCH):
            subs, points = [], []
            for i in range(start, min(n, start + BATCH)):
                iid = f"uuid:{uuid.UUID(int=rnd.getrandbits(128))}"
                lat, lon = -2.5 + rnd.random(), 28.8 + rnd.random()
                xml = template_xml.replace("uuid:TEMPLATE", iid)
                subs.append({"id": i + 1, "instance_id": iid, "root_instance_id": iid, "current": True,
                             "form_id": ids[0], "form_version_id": ids[1], "submitted_by_user_id": ids[2],
                             "xml_sha256": hashlib.sha256(xml.encode()).hexdigest(), "xml": xml,
                             "data": visit_data(lat=lat, lon=lon, workers=i % 40, photo_name="site.jpg"),
                             "lon": lon, "lat": lat, "attachments_expected": 1 if i < photos else 0,
                             "attachments_present": 1 if i < photos else 0, "complete": True,
                             "review_state": "received", "restricted": False})
                points.append({"submission_id": i + 1, "field_path": "/field_visit/location", "repeat_index": 0,
                               "lon": lon, "lat": lat})
            conn.execute(insert(Submission), subs)
            conn.execute(insert(SubmissionGeopoint), points)
        blob_rows, attachments = [], []
        for i in range(photos):
            stored = blobs.put_bytes(rnd.randbytes(PHOTO_BYTES))
            blob_rows.append({"sha256": stored.sha256, "size": stored.size, "media_type": "image/jpeg"})
            attachments.append({"submission_id": i + 1, "name": "site.jpg", "field_path": "/field_visit/site_photo",
                                "sha256": stored.sha256, "size": stored.size, "media_type": "image/jpeg",
                                "received": True})
        if photos:
            conn.execute(insert(Blob), blob_rows)
            conn.execute(insert(SubmissionAttachment), attachments)
    if settings.is_sqlite:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


#: What each measured process runs: one operation of app.backup (as ``asmfield backup|restore`` calls it),
#: timed inside the process, so the interpreter's start-up and the CLI's imports stay out of "seconds".
CHILD = """
import json, sys, time
from pathlib import Path
from app.backup import create_backup, restore_backup, verify_backup
from app.blobs import FilesystemBlobStore
from app.settings import Settings
op, path = sys.argv[1], Path(sys.argv[2])
settings = Settings()
started = time.perf_counter()
if op == "backup":
    create_backup(settings, FilesystemBlobStore(settings.media_path), path, operator="bench")
elif op == "verify":
    assert verify_backup(path).ok
elif op == "restore":
    restore_backup(settings, FilesystemBlobStore(settings.media_path), path, operator="bench")
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def _measure(settings: Settings, op: str, path: Path) -> tuple[float, int]:
    """Run one operation in its own process: (seconds inside it, peak RSS bytes of it or of what it waited for)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASMFIELD_")}
    env |= {"ASMFIELD_DATA_DIR": str(settings.data_dir), "ASMFIELD_DATABASE_URL": settings.db_url}
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    process = subprocess.Popen([sys.executable, "-c", CHILD, op, str(path)], cwd=ROOT, env=env, stdout=out, stderr=err)
    _, status, usage = os.wait4(process.pid, 0)  # usage: this process and the ones it waited for (pg_dump)
    process.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    if process.returncode != 0:
        raise RuntimeError(f"{op} failed:\n{err.read().decode()}")
    return json.loads(out.read().decode().strip().splitlines()[-1])["seconds"], usage.ru_maxrss * 1024


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(pg_url: str | None = None, quick: bool = False) -> list[dict]:
    n, photos = (10_000, 100) if quick else (100_000, 1_000)
    tmp = Path(tempfile.mkdtemp(prefix="asmfield-backupbench-"))
    databases: list[str] = []

    def database(label: str) -> str | None:
        if not pg_url:
            return None
        name = f"asmfield_bk_{label}_{uuid.uuid4().hex[:8]}"
        _pg(pg_url, f'CREATE DATABASE "{name}"')
        databases.append(name)
        return pg_url.rsplit("/", 1)[0] + f"/{name}"

    try:
        source = Settings(data_dir=tmp / "server", database_url=database("src"))
        source.ensure_secret()
        t = time.perf_counter()
        _seed(source, n, photos)
        seeded = time.perf_counter() - t
        db_label = "PostgreSQL" if pg_url else "SQLite"
        db_mb = (_size(Path(source.db_url.removeprefix("sqlite:///"))) / 1e6) if not pg_url else None
        print(f"seeded {n:,} submissions and {photos:,} photos in {seeded:.1f} s"
              + (f" (database {db_mb:.0f} MB)" if db_mb else ""), file=sys.stderr)
        _, rss = _measure(source, "import", tmp)
        rows = [{"database": db_label, "step": "(imports only: the baseline)", "peak RSS MB": f"{rss / 1e6:.0f}",
                 "load": f"{load_average():.1f}"}]
        for kind, target in (("directory", tmp / "backups" / "b1"), ("tar.gz", tmp / "backups" / "b2.tar.gz")):
            restored = Settings(data_dir=tmp / f"restored-{target.name}", database_url=database("dst"))
            for op, label, settings in (("backup", f"backup → {kind}", source),
                                        ("verify", f"backup --verify ({kind})", source),
                                        ("restore", f"restore ({kind})", restored)):
                seconds, rss = _measure(settings, op, target)
                rows.append({"database": db_label, "step": label, "submissions": f"{n:,}", "photos": photos,
                             "backup MB": f"{_size(target) / 1e6:.0f}", "seconds": f"{seconds:.1f}",
                             "peak RSS MB": f"{rss / 1e6:.0f}", "load": f"{load_average():.1f}"})
            engine = make_engine(restored)
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT count(*) FROM submission").scalar_one() == n
            engine.dispose()
        return rows
    finally:
        for name in databases:
            _pg(pg_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    for row in main(sys.argv[1] if len(sys.argv) > 1 else None, quick="--quick" in sys.argv):
        print(row)
