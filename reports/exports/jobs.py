"""Exports in the background (issue 15): a queue in the database (``reports.models.ExportJob``) and a
small thread pool per app process that runs it.

* ``submit`` checks the spec and who may export *now* (the same ``export_plan`` as a direct download),
  then queues a job for the caller; the route wakes the runner once the request's transaction committed.
* A runner claims a job with one conditional ``UPDATE … WHERE status = 'queued'`` (with ``RETURNING``),
  so several processes over one database never run one job twice. It writes the export to a file
  under ``DATA_DIR/exports`` (``export-<job>-<attempt>.<ext>``, renamed from ``.part`` when complete),
  counting rows into the job as it goes; every progress write is conditional on still holding the
  job, so a runner that lost its claim stops.
* A job left ``running`` by a dead process is queued again when a runner starts (its process is gone)
  or, from any process, when it has not been heard from for ``STALE_AFTER``. A runner stopping with
  the server puts its running jobs back in the queue.
* Finished files are deleted ``EXPORT_RETENTION_DAYS`` after they finish, with their job rows.

The job runs as its owner, looked up again when it runs: a user deactivated meanwhile gets nothing,
and the case-data rules are those of ``reports.exports.rows`` at that moment.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, delete, select, update
from sqlmodel import Session, col

from app import audit
from app.blobs import BlobStore
from app.db import session_scope
from app.errors import DomainError
from app.events import Hooks
from app.identity import Actor
from app.models import User
from app.settings import Settings
from app.timeutil import as_utc, isoformat, utcnow
from reports.errors import ExportJobNotFound, ExportNotReady
from reports.exports import FORMATS, geo, media_zip
from reports.exports.rows import count, export_plan
from reports.exports.spec import parse_spec
from reports.models import ExportJob

log = logging.getLogger(__name__)

#: Threads per app process running exports (each streams, so memory stays flat per job).
WORKERS = 2
#: A running job whose runner has not written for this long is taken to be dead.
STALE_AFTER = timedelta(minutes=10)
#: How often a runner heartbeats its jobs, requeues stale ones, looks for queued ones and deletes old files.
SWEEP_SECONDS = 60.0
#: Progress is written at most this often (seconds) while a job runs.
PROGRESS_EVERY = 1.0
#: Runners alive in this process (to tell a sibling app's job from one a dead run of this pid left).
_LIVE_RUNNERS: set[str] = set()


def exports_dir(settings: Settings) -> Path:
    """Where finished exports are kept (``DATA_DIR/exports``)."""
    return settings.data_dir / "exports"


# -- writing one export ----------------------------------------------------------------------


def file_type(fmt: str) -> tuple[str, str]:
    """(extension, media type) of the file an export format makes."""
    if fmt == "media":
        return media_zip.EXTENSION, media_zip.MEDIA_TYPE
    return FORMATS[fmt].extension, FORMATS[fmt].media_type


def check_format(plan: Any) -> None:
    """What only a format refuses, checked before any file is written: the geo field to draw, case photos."""
    if plan.spec.format in ("geojson", "gpkg"):
        geo.geometry_field(plan)
    elif plan.spec.format == "media":
        media_zip.check(plan)


def write_export(session: Session, plan: Any, out: BinaryIO, *, blobs: BlobStore,
                 progress: Callable[[int], None] | None = None) -> None:
    """Write the export ``plan`` describes (its spec's format) to ``out``: the tabular and geo formats
    through ``FORMATS``; the media zip also needs the blob store."""
    if plan.spec.format == "media":
        media_zip.write_media_zip(session, plan, out, progress, blobs=blobs)
    else:
        FORMATS[plan.spec.format](session, plan, out, progress)


def download_name(job: ExportJob) -> str:
    """The file name offered to the browser: ``<form>-<format>-<date>.<ext>``."""
    ext = file_type(job.format)[0]
    suffix = "-media" if job.format == "media" else ""
    day = as_utc(job.finished_at or job.created_at).strftime("%Y%m%d-%H%M")
    return f"{job.xml_form_id}{suffix}-{day}.{ext}"


# -- the queue, as the API sees it -----------------------------------------------------------


class ExportJobPublic(BaseModel):
    """An export job as the API and the exports page show it."""

    id: int
    form: str
    format: str
    status: str = Field(description="queued, running, done or failed")
    params: dict[str, str] = Field(description="the export's parameters (as the stable CSV URL's query string)")
    rows_done: int
    rows_total: int | None
    size: int | None = Field(description="bytes of the file, once done")
    error: str | None
    created_at: str | None
    finished_at: str | None
    expires_at: str | None = Field(description="when the file is deleted")
    file_url: str | None = Field(description="where to download the file, once done")


class ExportJobList(BaseModel):
    jobs: list[ExportJobPublic]


def public(job: ExportJob) -> ExportJobPublic:
    done = job.status == "done"
    return ExportJobPublic(
        id=job.id, form=job.xml_form_id, format=job.format, status=job.status,
        params={str(k): str(v) for k, v in (job.spec or {}).items()}, rows_done=job.rows_done,
        rows_total=job.rows_total, size=job.size, error=job.error, created_at=isoformat(job.created_at),
        finished_at=isoformat(job.finished_at), expires_at=isoformat(job.expires_at),
        file_url=f"/api/v1/exports/{job.id}/file" if done else None)


def as_text(params: Mapping[str, Any]) -> dict[str, str]:
    """JSON values as query-string text (``true``/``false`` for booleans; empty values left out)."""
    out = {}
    for name, value in params.items():
        if value is None or value == "":
            continue
        out[str(name)] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def submit(session: Session, *, actor: Actor, hooks: Hooks, params: Mapping[str, Any]) -> ExportJob:
    """Queue an export for ``actor``.

    :param params: the export's parameters, named as in the stable CSV URL's query string (``form``,
        ``format``, filters and options); checked now with ``parse_spec`` and ``export_plan`` so a
        bad value (422) or a refusal (403/404) is answered at once, not found later in the job.
    """
    spec = parse_spec(params)
    clean = spec.as_params()
    plan = export_plan(session, actor, hooks, spec, audited=False)  # the run audits (export.create)
    check_format(plan)
    job = ExportJob(user_id=actor.user.id, xml_form_id=spec.xml_form_id, format=spec.format, spec=clean)
    session.add(job)
    session.flush()
    audit.record(session, "export.queue", actor=actor, object_type="export_job", object_id=job.id, spec=clean)
    return job


def my_jobs(session: Session, *, actor: Actor, limit: int = 50) -> list[ExportJob]:
    """The caller's jobs, newest first."""
    query = (select(ExportJob).where(ExportJob.user_id == actor.user.id)
             .order_by(col(ExportJob.id).desc()).limit(limit))
    return list(session.scalars(query))


def my_job(session: Session, *, actor: Actor, job_id: int) -> ExportJob:
    """One of the caller's jobs; somebody else's looks absent (404)."""
    job = session.get(ExportJob, job_id)
    if job is None or job.user_id != actor.user.id:
        raise ExportJobNotFound(f"no export job {job_id} of yours", details={"job": job_id})
    return job


def job_file(session: Session, *, actor: Actor, settings: Settings, job_id: int) -> tuple[ExportJob, Path]:
    """The finished file of one of the caller's jobs (409 while it is not done; audited)."""
    job = my_job(session, actor=actor, job_id=job_id)
    path = exports_dir(settings) / job.file_name if job.file_name else None
    if job.status != "done" or path is None or not path.is_file():
        raise ExportNotReady(f"export job {job_id} is {job.status}: no file to download yet",
                             details={"job": job_id, "status": job.status})
    audit.record(session, "export.download", actor=actor, object_type="export_job", object_id=job.id,
                 form=job.xml_form_id, format=job.format)
    return job, path


# -- claiming and running --------------------------------------------------------------------


def claim_next(engine: Engine, runner_id: str) -> int | None:
    """Take the oldest queued job for ``runner_id``: one UPDATE, so two runners never get the same job."""
    while True:
        now = utcnow()
        with engine.begin() as conn:
            oldest = (select(ExportJob.id).where(ExportJob.status == "queued")
                      .order_by(col(ExportJob.id)).limit(1).scalar_subquery())
            claimed = conn.execute(
                update(ExportJob).where(col(ExportJob.id) == oldest, ExportJob.status == "queued")
                .values(status="running", claimed_by=runner_id, started_at=now, heartbeat_at=now,
                        attempts=ExportJob.attempts + 1, rows_done=0, error=None)
                .returning(ExportJob.id)
            ).scalar()
            if claimed is not None:
                return claimed
            left = conn.execute(select(ExportJob.id).where(ExportJob.status == "queued").limit(1)).scalar()
        if left is None:
            return None  # else another runner took the one we aimed at: try the next


class JobLost(Exception):
    """This runner no longer holds the job (requeued as stale, or deleted): stop writing."""


class Stopping(Exception):
    """The server is stopping: the job goes back to the queue."""


def _holds(job_id: int, runner_id: str) -> Any:
    return (ExportJob.id == job_id) & (ExportJob.claimed_by == runner_id) & (ExportJob.status == "running")


def _write_job(engine: Engine, job_id: int, runner_id: str, **values: Any) -> None:
    with engine.begin() as conn:
        if conn.execute(update(ExportJob).where(_holds(job_id, runner_id)).values(**values)).rowcount != 1:
            raise JobLost(job_id)


@dataclass
class Progress:
    """Counts rows into the job row, at most every ``PROGRESS_EVERY`` seconds (and heartbeats)."""

    engine: Engine
    job_id: int
    runner_id: str
    stop: threading.Event | None = None
    done: int = 0
    _last: float = 0.0

    def __call__(self, rows: int) -> None:
        self.done = rows
        if self.stop is not None and self.stop.is_set():
            raise Stopping
        now = utcnow()
        if now.timestamp() - self._last >= PROGRESS_EVERY:
            self._last = now.timestamp()
            _write_job(self.engine, self.job_id, self.runner_id, rows_done=rows, heartbeat_at=now)


def run_job(engine: Engine, *, settings: Settings, hooks: Hooks, blobs: BlobStore, job_id: int, runner_id: str,
            stop: threading.Event | None = None) -> None:
    """Run a job this runner claimed: write its file, then mark it done (or failed, naming why)."""
    with Session(engine, expire_on_commit=False) as session:
        job = session.get(ExportJob, job_id)
        user = session.get(User, job.user_id) if job else None
        attempt = job.attempts if job else 0
        params = dict(job.spec) if job else {}
    if job is None:
        return
    target = exports_dir(settings)
    target.mkdir(parents=True, exist_ok=True)
    name = f"export-{job_id}-{attempt}.{file_type(job.format)[0]}"
    part = target / f"{name}.part"
    progress = Progress(engine, job_id, runner_id, stop)
    try:
        if user is None or not user.active:
            raise ExportJobNotFound("the account that asked for this export is no longer active")
        actor = Actor(user=user, via="export_job")
        with session_scope(engine) as session:  # a short write transaction for the audit entry
            plan = export_plan(session, actor, hooks, parse_spec(params))
        with session_scope(engine) as session:  # reads only: no write lock held while the file is written
            _write_job(engine, job_id, runner_id, rows_total=count(session, plan), heartbeat_at=utcnow())
            with part.open("wb") as out:
                write_export(session, plan, out, blobs=blobs, progress=progress)
                out.flush()
                os.fsync(out.fileno())
        part.replace(target / name)
        finished = utcnow()
        try:
            _write_job(engine, job_id, runner_id, status="done", file_name=name, size=(target / name).stat().st_size,
                       rows_done=progress.done, finished_at=finished, heartbeat_at=finished,
                       expires_at=finished + timedelta(days=settings.export_retention_days))
        except JobLost:
            (target / name).unlink(missing_ok=True)
            raise
    except Stopping:
        part.unlink(missing_ok=True)
        _release(engine, job_id, runner_id)
    except JobLost:
        part.unlink(missing_ok=True)
        log.info("export job %s was taken from runner %s; stopped", job_id, runner_id)
    except DomainError as exc:  # refused now (user deactivated, form gone, rights changed)
        part.unlink(missing_ok=True)
        _fail(engine, job_id, runner_id, exc.message)
    except Exception as exc:  # noqa: BLE001 -- a failed export is reported on its job, never lost
        part.unlink(missing_ok=True)
        log.exception("export job %s failed", job_id)
        _fail(engine, job_id, runner_id, f"internal error ({type(exc).__name__}); it has been logged")


def _fail(engine: Engine, job_id: int, runner_id: str, message: str) -> None:
    try:
        _write_job(engine, job_id, runner_id, status="failed", error=message[:2000], finished_at=utcnow())
    except JobLost:
        pass


def _release(engine: Engine, job_id: int, runner_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(ExportJob).where(_holds(job_id, runner_id))
                     .values(status="queued", claimed_by=None, rows_done=0))


# -- recovery and retention ------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _is_orphan(claimed_by: str | None, heartbeat: datetime | None, now: datetime) -> bool:
    """Was a running job left by a runner that is gone?"""
    if heartbeat is None or as_utc(heartbeat) < now - STALE_AFTER:
        return True
    host, _, rest = (claimed_by or "").partition(":")
    pid_text, _, _ = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine's runner: only its silence (the heartbeat) tells
    pid = int(pid_text)
    if pid == os.getpid():
        return claimed_by not in _LIVE_RUNNERS  # an earlier life of this process id
    return not _pid_alive(pid)


def requeue_orphans(engine: Engine) -> list[int]:
    """Put back in the queue the running jobs whose runner is gone (see ``_is_orphan``)."""
    now = utcnow()
    with engine.begin() as conn:
        running = conn.execute(select(ExportJob.id, ExportJob.claimed_by, ExportJob.heartbeat_at)
                               .where(ExportJob.status == "running")).all()
        requeued = []
        for job_id, claimed_by, heartbeat in running:
            if _is_orphan(claimed_by, heartbeat, now):
                conn.execute(update(ExportJob).where(ExportJob.id == job_id, ExportJob.status == "running",
                                                     ExportJob.claimed_by == claimed_by)
                             .values(status="queued", claimed_by=None, rows_done=0))
                requeued.append(job_id)
    if requeued:
        log.info("export jobs requeued (their runner is gone): %s", requeued)
    return requeued


def purge_expired(engine: Engine, settings: Settings) -> int:
    """Delete the files of exports past their ``expires_at`` and their job rows; failed jobs go after
    the same retention. Returns how many jobs were removed."""
    now = utcnow()
    cutoff = now - timedelta(days=settings.export_retention_days)
    with engine.begin() as conn:
        old = conn.execute(select(ExportJob.id, ExportJob.file_name).where(
            ((ExportJob.status == "done") & (col(ExportJob.expires_at) < now))
            | ((ExportJob.status == "failed") & (col(ExportJob.finished_at) < cutoff)))).all()
        if old:
            conn.execute(delete(ExportJob).where(col(ExportJob.id).in_([job_id for job_id, _ in old])))
    for _, file_name in old:
        if file_name:
            (exports_dir(settings) / file_name).unlink(missing_ok=True)
    return len(old)


# -- the runner ------------------------------------------------------------------------------


class RunnerSettings(BaseSettings):
    """Whether this process runs background exports, from ``ASMFIELD_EXPORT_RUNNER`` (documented in
    README's "Background jobs"); off, queued exports wait for a process where it is on."""

    model_config = SettingsConfigDict(env_prefix="ASMFIELD_EXPORT_", env_ignore_empty=True, extra="ignore")

    runner: bool = Field(True, description="Run the background export threads in each server process.")


class ExportRunner:
    """The background exports of one app process: ``WORKERS`` threads and a sweeper thread.

    ``start`` (app start-up) requeues orphaned jobs and looks for queued ones; ``kick`` (after a job
    was queued and committed) lets a worker look again; ``stop`` (shutdown) puts running jobs back in
    the queue at their next progress step and waits for the threads.
    """

    def __init__(self, engine: Engine, *, settings: Settings, hooks: Hooks, blobs: BlobStore,
                 workers: int = WORKERS, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self.engine, self.settings, self.hooks, self.blobs = engine, settings, hooks, blobs
        self.runner_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.sweep_seconds = sweep_seconds
        self._workers = workers
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._sweeper: threading.Thread | None = None

    def start(self) -> None:
        """Start the threads, unless ``ASMFIELD_EXPORT_RUNNER`` is off (then ``kick`` and ``stop`` do nothing)."""
        if not RunnerSettings().runner:
            return
        _LIVE_RUNNERS.add(self.runner_id)
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="export")
        self._sweeper = threading.Thread(target=self._sweep_loop, name="export-sweeper", daemon=True)
        self._sweeper.start()

    def kick(self) -> None:
        """Look for queued jobs now (call after the transaction that queued one committed)."""
        if self._pool is not None and not self._stop.is_set():
            self._pool.submit(self._drain)

    def stop(self) -> None:
        self._stop.set()
        if self._sweeper is not None:
            self._sweeper.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        _LIVE_RUNNERS.discard(self.runner_id)

    def _drain(self) -> None:
        while not self._stop.is_set():
            job_id = claim_next(self.engine, self.runner_id)
            if job_id is None:
                return
            run_job(self.engine, settings=self.settings, hooks=self.hooks, blobs=self.blobs, job_id=job_id,
                    runner_id=self.runner_id, stop=self._stop)

    def _sweep(self) -> None:
        with self.engine.begin() as conn:  # heartbeat: our running jobs are alive even between progress steps
            conn.execute(update(ExportJob).where(ExportJob.claimed_by == self.runner_id,
                                                 ExportJob.status == "running").values(heartbeat_at=utcnow()))
        requeue_orphans(self.engine)
        purge_expired(self.engine, self.settings)
        for _ in range(self._workers):
            self.kick()

    def _sweep_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._sweep()
            except Exception:  # noqa: BLE001 -- a database hiccup must not end the sweeper
                log.exception("export sweeper")
            self._stop.wait(self.sweep_seconds)
