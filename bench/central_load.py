"""OpenRosa ingest measured with the reference load generator (``../shared/bench/openrosa_load.py``),
the tool and workload ODK Central's figures were taken with (issue 13): its 16-question form
(``--print-form``) published here, ~2 KB submissions through ``/key/{token}/submission``, warm-up
first, and ``--watch server=PID`` for the server's CPU seconds (uvicorn and its workers; for
PostgreSQL the database server's CPU is not included). PostgreSQL tables are ANALYZEd after the
warm-up, as autovacuum would (it is off on this machine kind).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import create_engine, text

from app.blobs import FilesystemBlobStore
from app.db import make_engine, session_scope
from bench.harness import BenchEnv, bench_env, count_submissions, load_average

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT.parent / "shared" / "bench" / "openrosa_load.py"
FORM_ID, VERSION = "household_survey", "1"


def _publish_reference_form(env: BenchEnv) -> None:
    from forms.service import add_form

    xform = subprocess.run([sys.executable, str(GENERATOR), "--print-form", "--form-id", FORM_ID, "--version", VERSION],
                           check=True, capture_output=True).stdout
    engine = make_engine(env.settings)
    try:
        with session_scope(engine) as s:
            add_form(s, blobs=FilesystemBlobStore(env.settings.media_path), settings=env.settings, actor=None,
                     content=xform, filename="household_survey.xml", kind="site_visit")
    finally:
        engine.dispose()


def _analyze(env: BenchEnv) -> None:
    if env.db_label != "PostgreSQL":
        return
    engine = create_engine(env.settings.db_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def run_case(env: BenchEnv, *, n: int, concurrency: int, photo_kb: int = 0, warmup: int = 50) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as out:
        before = count_submissions(env)
        command = [sys.executable, str(GENERATOR), "--base", f"{env.url}/key/{env.device_token}",
                   "--form-id", FORM_ID, "--version", VERSION, "--n", str(n), "--concurrency", str(concurrency),
                   "--warmup", str(warmup), "--watch", f"server={env.server.process.pid}", "--json-out", out.name]
        if photo_kb:
            command += ["--photo-kb", str(photo_kb)]
        subprocess.run(command, check=True, capture_output=True)
        result = json.loads(Path(out.name).read_text().splitlines()[-1])
    stored = count_submissions(env) - before
    server = (result.get("processes") or {}).get("server") or {}
    cpu_s = server.get("cpu_s")
    return {
        "db": env.db_label, "case": f"{'photo ' + str(photo_kb) + ' KB' if photo_kb else 'small'} @ c={concurrency}",
        "ok": result["ok"], "failed": result["failed"], "stored": stored,
        "per_second": result["submissions_per_s"], "p50_ms": result["latency_ms"]["p50"],
        "p95_ms": result["latency_ms"]["p95"], "p99_ms": result["latency_ms"]["p99"],
        "max_ms": result["latency_ms"]["max"],
        "server_cpu_ms_per_sub": round(cpu_s * 1000 / max(1, result["ok"]), 2) if cpu_s is not None else "",
        "server_peak_rss_mb": server.get("peak_rss_mb", ""), "load1": load_average(),
    }


#: ODK Central v2026.2.2 on this machine kind, same generator and workload (issue 13): subs/s at c=8.
CENTRAL_SMALL_PER_S, CENTRAL_SMALL_P95_MS, CENTRAL_PHOTO_PER_S = 118.0, 99.0, 85.0


def _versus_central(row: dict) -> dict:
    """The row's throughput as a multiple of Central's (the goal is 3x), and its p95 against Central's."""
    photo = row["case"].startswith("photo")
    row["x_central"] = round(row["per_second"] / (CENTRAL_PHOTO_PER_S if photo else CENTRAL_SMALL_PER_S), 2)
    if not photo:
        row["p95_vs_central"] = round(row["p95_ms"] / CENTRAL_SMALL_P95_MS, 2)
    return row


def main(pg_url: str | None = None, *, quick: bool = False, workers: int | None = None) -> list[dict]:
    """Small submissions at c=1/8/32, then 200 KB photos at c=8. ``workers`` None: the server is
    ``asmfield serve`` with the worker count it picks for the database (what the issue measures)."""
    n = 400 if quick else 2000
    rows = []
    label = workers if workers is not None else "serve default"
    with bench_env(pg_url=pg_url, workers=workers) as env:
        _publish_reference_form(env)
        run_case(env, n=50, concurrency=4, warmup=0)
        _analyze(env)
        for concurrency in (1, 8, 32):
            rows.append(_versus_central(run_case(env, n=n, concurrency=concurrency)) | {"workers": label})
        rows.append(_versus_central(run_case(env, n=n // 5, concurrency=8, photo_kb=200)) | {"workers": label})
    return rows
