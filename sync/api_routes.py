"""JSON sync and read API: batch sync, blobs, submissions and media (thin routers over ``sync.batch``,
``sync.blob_uploads`` and ``sync.reading``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from app.auth import ApiActor, api_actor
from app.deps import BlobsDep, HooksDep, SessionDep, SettingsDep
from app.http_security import ANY, takes
from app.identity import Actor
from app.timeutil import isoformat
from sync import batch, blob_uploads, form_lookup, media, reading, review, rights
from sync.errors import BatchInvalid, BatchNotJson, BatchTooLarge, BlobTooLarge, RequestBadLength
from sync.schemas import (
    BatchItemResult,
    BatchResults,
    BlobReceiptPublic,
    CommentBody,
    ReviewBody,
    ReviewResult,
    ReviewStepPublic,
    ReviewSteps,
    SubmissionDetail,
    SubmissionList,
)

router = APIRouter(tags=["sync"])

#: A batch body is parsed whole in memory, so it gets its own cap below MAX_SUBMISSION_BYTES
#: (500 typical items are ~2 MB; photos never travel in a batch, they go to /api/v1/blobs).
MAX_BATCH_BODY = 32_000_000

#: Person or device token (sync routes accept both; read routes take ``ApiActor``: people only).
SyncActor = Annotated[Actor, Depends(api_actor)]


class BatchBody(BaseModel):
    device: str | None = Field(default=None, max_length=200)
    #: Validated item by item by the service, so one malformed item fails only itself.
    items: list[Any]

    @field_validator("device")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        problem = batch.unfit(value)
        if problem is not None:
            raise ValueError(problem[1])
        return value


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise RequestBadLength("Content-Length is not a number") from exc


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise BatchTooLarge(f"the request body is {declared} bytes; the limit is {limit}",
                            details={"limit": limit})
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise BatchTooLarge(f"the request body is larger than the limit of {limit} bytes",
                                details={"limit": limit})
    return bytes(body)


@router.post("/api/v1/sync/batches", response_model=BatchResults, response_model_exclude_unset=True)
async def sync_batches(request: Request, actor: SyncActor, session: SessionDep, blobs: BlobsDep,
                       settings: SettingsDep, hooks: HooksDep) -> BatchResults:
    """Sync up to MAX_BATCH_ITEMS submissions; one result per item (created|duplicate|edit|conflict|invalid)."""
    raw = await _read_limited(request, min(settings.max_submission_bytes, MAX_BATCH_BODY))
    try:  # a body of up to 32 MB: parsed in the thread pool, off the event loop
        body = await run_in_threadpool(lambda: BatchBody.model_validate(batch.loads(raw)))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BatchNotJson(f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise BatchNotJson("the body is JSON nested too deeply") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise BatchInvalid(f"{where}: {first.get('msg')}" if where else f"the body must be an object: {first.get('msg')}",
                           details={"problems": [{"field": ".".join(str(p) for p in e.get("loc", ())),
                                             "message": e.get("msg")} for e in exc.errors()]}) from exc
    results = await run_in_threadpool(batch.sync_batch, session, blobs=blobs, settings=settings, hooks=hooks, actor=actor,
                                      items=body.items, device=body.device,
                                      user_agent=request.headers.get("user-agent"))
    return BatchResults(results=[BatchItemResult.from_result(r) for r in results])


@router.head("/api/v1/blobs/{sha256}", response_class=Response,
             responses={200: {"description": "No upload needed"}, 404: {"description": "Upload the bytes (PUT)"}})
def head_blob(sha256: str, actor: SyncActor, session: SessionDep) -> Response:
    """200 when you sent these bytes before and nothing of yours waits for them (no upload needed),
    else 404 (PUT them): a file that is absent and one that is not yours answer alike."""
    present = blob_uploads.blob_present(session, actor=actor, sha256=sha256)
    return Response(status_code=200 if present else 404)


@router.put("/api/v1/blobs/{sha256}", openapi_extra=takes(ANY), response_model=BlobReceiptPublic, status_code=201,
            responses={200: {"model": BlobReceiptPublic, "description": "These bytes were already stored"}})
async def put_blob(sha256: str, request: Request, actor: SyncActor, session: SessionDep, blobs: BlobsDep,
                   settings: SettingsDep) -> JSONResponse:
    """Upload a file announced in a batch; verified by its sha256; fills your attachments waiting for it."""
    await run_in_threadpool(blob_uploads.authorise_blob, session, actor=actor, sha256=sha256)
    declared = _declared_length(request)
    if declared is not None and declared > settings.max_attachment_bytes:
        raise BlobTooLarge(f"the file is {declared} bytes; the limit is {settings.max_attachment_bytes}",
                           details={"limit": settings.max_attachment_bytes})
    upload = await blob_uploads.spool(request.stream(), directory=blobs.tmp, max_bytes=settings.max_attachment_bytes)
    try:
        receipt = await run_in_threadpool(blob_uploads.receive_blob, session, blobs=blobs, settings=settings, actor=actor,
                                          sha256=sha256, upload=upload,
                                          media_type=request.headers.get("content-type"))
    finally:
        upload.path.unlink(missing_ok=True)
    return JSONResponse(BlobReceiptPublic.from_receipt(receipt).model_dump(mode="json"),
                        status_code=201 if receipt.created else 200)


@router.get("/api/v1/forms/{xml_form_id}/submissions")
def list_submissions(
    xml_form_id: str, actor: ApiActor, session: SessionDep, hooks: HooksDep,
    limit: Annotated[int, Query(description="Page size, 1..1000")] = 100,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    offset: Annotated[int | None, Query(description="Skip this many (when not using cursor)")] = None,
    since: Annotated[str | None, Query(description="Received at or after (ISO date or datetime, UTC)")] = None,
    until: Annotated[str | None, Query(description="Received at or before (a bare date includes that day)")] = None,
    device: Annotated[str | None, Query(description="Device name or client deviceID")] = None,
    site: Annotated[str | None, Query(description="Site code")] = None,
) -> SubmissionList:
    """Current submissions of a form, oldest first, paged (design.md §6 access rules). Case forms:
    403 ``submission.case_data`` for everyone (their records are read through ``/api/v1/cases``)."""
    rights.refuse_case_data(session, hooks=hooks, form=form_lookup.get_form(session, xml_form_id))
    page = reading.list_submissions(session, actor=actor, hooks=hooks, xml_form_id=xml_form_id, limit=limit, cursor=cursor,
                                  offset=offset, since=since, until=until, device=device, site=site)
    return SubmissionList(items=page.items, next_cursor=page.next_cursor)


@router.get("/api/v1/submissions/{instance_id}")
def get_submission(instance_id: str, actor: ApiActor, session: SessionDep, hooks: HooksDep) -> SubmissionDetail:
    """One submission with the edit history of its record (case-form ones: 403 ``submission.case_data``)."""
    rights.refuse_case_submission(session, hooks=hooks, instance_id=instance_id)
    return reading.get_submission(session, actor=actor, hooks=hooks, instance_id=instance_id)


def _step(step: review.ReviewStep) -> ReviewStepPublic:
    return ReviewStepPublic(id=step.id, instance_id=step.instance_id, author=step.author, at=isoformat(step.at),
                            from_state=step.from_state, to_state=step.to_state, comment=step.comment)


@router.patch("/api/v1/submissions/{instance_id}/review")
def review_submission(instance_id: str, body: ReviewBody, actor: ApiActor, session: SessionDep,
                      hooks: HooksDep) -> ReviewResult:
    """Set the record's review state (``needs_review`` = Central's "has issues", ``approved``, ``rejected``)
    with an optional comment; admins and coordinators (others 403 ``review.forbidden``); audited."""
    step = review.set_state(session, actor=actor, hooks=hooks, instance_id=instance_id, state=body.state,
                            comment=body.comment)
    state = review.state_of(session, actor=actor, hooks=hooks, instance_id=step.instance_id)
    return ReviewResult(instance_id=step.instance_id, review_state=state, step=_step(step))


@router.get("/api/v1/submissions/{instance_id}/comments")
def list_review_steps(instance_id: str, actor: ApiActor, session: SessionDep, hooks: HooksDep) -> ReviewSteps:
    """The record's review steps (state changes and comments), oldest first, for whoever may read it."""
    steps = review.history(session, actor=actor, hooks=hooks, instance_id=instance_id)
    state = review.state_of(session, actor=actor, hooks=hooks, instance_id=instance_id)
    return ReviewSteps(review_state=state, items=[_step(s) for s in steps])


@router.post("/api/v1/submissions/{instance_id}/comments", status_code=201)
def add_review_comment(instance_id: str, body: CommentBody, actor: ApiActor, session: SessionDep,
                       hooks: HooksDep) -> ReviewStepPublic:
    """A comment on the record without changing its state; admins and coordinators; audited."""
    return _step(review.add_comment(session, actor=actor, hooks=hooks, instance_id=instance_id, comment=body.comment))


@router.get("/api/v1/media/{sha256}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}, "image/jpeg": {}},
                             "description": "The file, or its thumb/web JPEG"}, 304: {"description": "Not modified"}})
def get_media(sha256: str, request: Request, actor: ApiActor, session: SessionDep, blobs: BlobsDep,
              size: Annotated[str | None, Query(description="thumb (240 px) or web (1280 px)")] = None) -> Response:
    """An attachment (or its thumbnail / web size) of a submission you may read, or a file you sent.

    Only JPEG/PNG/WebP/GIF images that Pillow reads are sent inline; everything else is an
    attachment; always with ``nosniff`` and a sandboxing CSP (``sync.media.served``)."""
    found = reading.media_file(session, blobs=blobs, actor=actor, sha256=sha256, size=size)
    media_type, safety = media.served(blobs.local_path(sha256, variant=found.variant),
                                      filename=f"{sha256}-{size}.jpg" if size else sha256, stored_type=found.media_type)
    headers = {"ETag": found.etag, "Cache-Control": "private, max-age=31536000, immutable", **safety}
    if found.etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    return blobs.response(sha256, variant=found.variant, media_type=media_type, headers=headers)
