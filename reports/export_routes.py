"""HTTP routes of background exports (issue 15), thin over ``reports.exports.jobs``.

``POST /api/v1/exports`` queues an export for the caller (202 and the job; the same parameters as the
stable CSV URL's query string, as a JSON object), ``GET /api/v1/exports`` lists the caller's jobs,
``GET /api/v1/exports/{id}`` is one job's status and progress, ``GET /api/v1/exports/{id}/file`` its
file once done — only ever the owner's. ``install`` also starts the app's export runner with the app
and stops it with the app (wrapping the app's lifespan).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, BackgroundTasks, Body, FastAPI, Request
from fastapi.responses import FileResponse, Response

from app.auth import ApiActor
from app.deps import HooksDep, SessionDep, SettingsDep
from reports.exports import jobs
from reports.exports.jobs import ExportJobList, ExportJobPublic

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])

ExportParams = Annotated[dict[str, str | bool | int | float | None], Body(
    examples=[{"form": "asm_site_visit", "format": "gpkg", "since": "2026-01-01", "headers": "labels",
               "language": "fr"}],
    description="The export's parameters, named as in the stable CSV URL's query string.")]


def kick(request: Request) -> None:
    """Wake the app's export runner (after the request's transaction committed)."""
    runner = getattr(request.app.state, "export_runner", None)
    if runner is not None:
        runner.kick()


@router.post("", status_code=202, response_model=ExportJobPublic)
def queue_export(params: ExportParams, actor: ApiActor, session: SessionDep, hooks: HooksDep,
                 background: BackgroundTasks, request: Request, response: Response) -> ExportJobPublic:
    """Queue an export of a form for the caller (runs in the background)."""
    job = jobs.submit(session, actor=actor, hooks=hooks, params=jobs.as_text(params))
    background.add_task(kick, request)
    response.headers["Location"] = f"/api/v1/exports/{job.id}"
    return jobs.public(job)


@router.get("", response_model=ExportJobList)
def list_exports(actor: ApiActor, session: SessionDep) -> ExportJobList:
    """The caller's exports, newest first."""
    return ExportJobList(jobs=[jobs.public(j) for j in jobs.my_jobs(session, actor=actor)])


@router.get("/{job_id}", response_model=ExportJobPublic)
def get_export(job_id: int, actor: ApiActor, session: SessionDep) -> ExportJobPublic:
    """One of the caller's exports: status, progress, file size."""
    return jobs.public(jobs.my_job(session, actor=actor, job_id=job_id))


@router.get("/{job_id}/file", response_class=FileResponse,
            responses={200: {"content": {jobs.file_type(f)[1]: {} for f in ("csv", "xlsx", "geojson", "gpkg")}}})
def download_export(job_id: int, actor: ApiActor, session: SessionDep, settings: SettingsDep) -> FileResponse:
    """The file of one of the caller's finished exports."""
    job, path = jobs.job_file(session, actor=actor, settings=settings, job_id=job_id)
    return FileResponse(path, media_type=jobs.file_type(job.format)[1], filename=jobs.download_name(job))


def install(app: FastAPI) -> None:
    """Mount the routes, and run the export runner for as long as the app runs."""
    app.include_router(router)
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        state = application.state
        runner = jobs.ExportRunner(state.engine, settings=state.settings, hooks=state.hooks, blobs=state.blobs)
        state.export_runner = runner
        runner.start()
        try:
            async with outer(application) as inner:
                yield inner
        finally:
            state.export_runner = None
            await anyio.to_thread.run_sync(runner.stop)  # running jobs go back to the queue

    app.router.lifespan_context = lifespan
