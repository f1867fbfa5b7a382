"""Background exports through the real app: queued → running → done with progress, downloaded by
their owner only; a job a dead process left running is queued again; two runners over one database
never take the same job; old files are deleted."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
import time
import zipfile
from datetime import timedelta

import geopandas as gpd
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.db import make_engine, session_scope
from app.timeutil import utcnow
from reports.exports import jobs
from reports.models import ExportJob


@pytest.fixture(autouse=True)
def export_runner_on(monkeypatch) -> None:
    """These tests are about the runner: their apps start it (tests/conftest.py turns it off elsewhere)."""
    monkeypatch.setenv("ASMFIELD_EXPORT_RUNNER", "true")


def wait_for(client, person, job_id: int, *, until=("done", "failed")) -> dict:
    """Poll the job as a client would, until it is finished (generous bound; no timing asserted)."""
    for _ in range(600):
        job = client.get(f"/api/v1/exports/{job_id}", headers=person.bearer).json()
        if job["status"] in until:
            return job
        time.sleep(0.05)
    raise AssertionError(f"export job {job_id} still {job['status']}")


def test_an_export_runs_in_the_background_with_progress_and_only_its_owner_downloads_it(client, kit, visits,
                                                                                         tmp_path) -> None:
    coordinator = kit.world.coordinator
    response = client.post("/api/v1/exports", json={"form": "export_visit", "format": "gpkg", "language": "en",
                                                    "include_edits": False}, headers=coordinator.bearer)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert response.headers["Location"] == f"/api/v1/exports/{queued['id']}"
    assert queued["status"] in ("queued", "running", "done") and queued["params"]["language"] == "en"

    job = wait_for(client, coordinator, queued["id"])
    assert job["status"] == "done", job
    assert job["rows_done"] == job["rows_total"] == 4
    assert job["file_url"] == f"/api/v1/exports/{job['id']}/file"
    download = client.get(job["file_url"], headers=coordinator.bearer)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/geopackage+sqlite3"
    assert 'filename="export_visit-' in download.headers["content-disposition"]
    assert len(download.content) == job["size"]
    path = tmp_path / "visits.gpkg"
    path.write_bytes(download.content)
    assert set(gpd.read_file(path)["_uuid"]) == {visits["edited"], visits["second"], visits["third"],
                                                  visits["outside"]}

    for other in (kit.world.admin, kit.world.monitor):  # somebody else's job looks absent
        assert client.get(f"/api/v1/exports/{job['id']}", headers=other.bearer).status_code == 404
        refused = client.get(job["file_url"], headers=other.bearer)
        assert refused.status_code == 404 and refused.json()["error"]["code"] == "export.job_not_found"
        assert client.get("/api/v1/exports", headers=other.bearer).json() == {"jobs": []}
    assert [j["id"] for j in client.get("/api/v1/exports", headers=coordinator.bearer).json()["jobs"]] == [job["id"]]

    # A monitor's CSV job holds their own visits only.
    mine = client.post("/api/v1/exports", json={"form": "export_visit", "format": "csv"}, headers=kit.world.monitor.bearer)
    done = wait_for(client, kit.world.monitor, mine.json()["id"])
    archive = client.get(done["file_url"], headers=kit.world.monitor.bearer).content
    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        main = pd.read_csv(z.open("export_visit.csv"), encoding="utf-8-sig")
    assert set(main["_uuid"]) == {visits["edited"], visits["second"]}


def test_a_bad_or_forbidden_export_is_refused_when_asked_not_later(client, kit, visits) -> None:
    bad = client.post("/api/v1/exports", json={"form": "export_visit", "format": "pdf"}, headers=kit.world.coordinator.bearer)
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "format"
    typo = client.post("/api/v1/exports", json={"form": "export_visit", "sinse": "2026-01-01"},
                       headers=kit.world.coordinator.bearer)
    assert typo.status_code == 422 and typo.json()["error"]["details"]["field"] == "sinse"
    refused = client.post("/api/v1/exports", json={"form": "export_visit"}, headers=kit.world.caseworker_a.bearer)
    assert refused.status_code == 403
    missing = client.post("/api/v1/exports", json={"form": "nope", "format": "csv"}, headers=kit.world.coordinator.bearer)
    assert missing.status_code == 404
    with session_scope(kit.engine) as session:
        assert session.exec(select(ExportJob)).all() == []


def _job(session, person, **values) -> int:
    job = ExportJob(user_id=person.user.id, xml_form_id="export_visit", format="csv",
                    spec={"form": "export_visit", "format": "csv"}, **values)
    session.add(job)
    session.flush()
    return job.id


def test_a_job_left_running_by_a_dead_process_is_queued_again_and_finished(app, kit, visits) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True)
    dead_pid = int(finished.stdout)
    host, now = socket.gethostname(), utcnow()
    with session_scope(kit.engine) as session:
        dead = _job(session, kit.world.coordinator, status="running", claimed_by=f"{host}:{dead_pid}:gone",
                    heartbeat_at=now, rows_done=2)
        silent = _job(session, kit.world.coordinator, status="running", claimed_by="elsewhere:1:x",
                      heartbeat_at=now - jobs.STALE_AFTER - timedelta(minutes=1))
        alive = _job(session, kit.world.coordinator, status="running", claimed_by="elsewhere:1:y", heartbeat_at=now)

    with TestClient(app) as client:  # start-up: the runner requeues the orphans, then runs them
        for job_id in (dead, silent):
            job = wait_for(client, kit.world.coordinator, job_id)
            assert job["status"] == "done" and job["rows_done"] == 4
        assert client.get(f"/api/v1/exports/{alive}", headers=kit.world.coordinator.bearer).json()["status"] == "running"
    with session_scope(kit.engine) as session:
        assert session.get(ExportJob, dead).attempts == 1


def test_two_runners_over_one_database_never_take_the_same_job(settings, kit, world) -> None:
    with session_scope(kit.engine) as session:
        queued = {_job(session, world.coordinator) for _ in range(30)}
    taken: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def runner(slot: int) -> None:
        engine = make_engine(settings)  # each runner its own engine, as two processes would have
        try:
            start.wait()
            while (job_id := jobs.claim_next(engine, f"runner-{slot}")) is not None:
                taken[slot].append(job_id)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=runner, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(taken[0] + taken[1]) == sorted(queued)  # every job once, none twice
    with session_scope(kit.engine) as session:
        rows = session.exec(select(ExportJob)).all()
        assert {r.claimed_by for r in rows if r.id in taken[0]} <= {"runner-0"}
        assert all(r.status == "running" and r.attempts == 1 for r in rows)


def test_finished_exports_are_deleted_after_the_retention(settings, kit, world) -> None:
    folder = jobs.exports_dir(settings)
    folder.mkdir(parents=True)
    (folder / "old.zip").write_bytes(b"old")
    (folder / "new.zip").write_bytes(b"new")
    now = utcnow()
    with session_scope(kit.engine) as session:
        old = _job(session, world.coordinator, status="done", file_name="old.zip", finished_at=now - timedelta(days=8),
                   expires_at=now - timedelta(days=1))
        new = _job(session, world.coordinator, status="done", file_name="new.zip", finished_at=now,
                   expires_at=now + timedelta(days=7))
    assert jobs.purge_expired(kit.engine, settings) == 1
    assert not (folder / "old.zip").exists() and (folder / "new.zip").exists()
    with session_scope(kit.engine) as session:
        assert session.get(ExportJob, old) is None and session.get(ExportJob, new) is not None
