"""JSON shapes of the sync capability's JSON API: batch results, blob receipts, submissions.

Submissions carry fields other capabilities add (``Hooks.submission_extras``: geodata's ``site``
code); ``site`` is declared here because the mapping columns are sync's, others pass through.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sync.batch import ItemResult
from sync.blob_uploads import BlobReceipt


class BatchItemResult(BaseModel):
    """One item's outcome. ``reason``/``code`` only when refused, ``missing_names`` only when some
    referenced files were not announced, ``complete`` only when stored (unset fields are left out)."""

    instance_id: str | None
    status: str  # created | duplicate | edit | conflict | invalid
    #: sha256 of announced attachments the server still needs (PUT /api/v1/blobs/{sha256}).
    missing: list[str]
    reason: str | None = None
    code: str | None = None
    #: Files the XML references that the item did not announce (they cannot be uploaded by hash).
    missing_names: list[str] = []
    complete: bool | None = None

    @classmethod
    def from_result(cls, result: ItemResult) -> BatchItemResult:
        values: dict[str, Any] = {"instance_id": result.instance_id, "status": result.status, "missing": result.missing}
        if result.reason is not None:
            values.update(reason=result.reason, code=result.code)
        if result.missing_names:
            values["missing_names"] = result.missing_names
        if result.complete is not None:
            values["complete"] = result.complete
        return cls(**values)


class BatchResults(BaseModel):
    results: list[BatchItemResult]


class BlobReceiptPublic(BaseModel):
    sha256: str
    #: True when these bytes were stored by this upload (201), False when already there (200).
    created: bool
    #: Instance ids whose attachments this upload filled.
    attached: list[str]

    @classmethod
    def from_receipt(cls, receipt: BlobReceipt) -> BlobReceiptPublic:
        return cls(sha256=receipt.sha256, created=receipt.created, attached=receipt.attached)


class SubmissionAttachmentPublic(BaseModel):
    name: str
    field: str | None
    received: bool
    sha256: str | None
    size: int | None
    media_type: str | None
    url: str | None


class SubmissionPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    instance_id: str
    root_instance_id: str
    deprecated_id: str | None
    current: bool
    superseded_by: str | None
    form_id: str | None
    version: str | None
    submitter: str | None
    device: str | None
    client_device_id: str | None
    received_at: str | None
    data: dict[str, Any] | None
    lon: float | None
    lat: float | None
    altitude: float | None
    accuracy: float | None
    #: The site's code (added by the capability mapping submissions onto sites).
    site: str | None = None
    site_distance_m: float | None
    site_match: str | None
    site_flag: str | None
    review_state: str | None
    complete: bool
    attachments_expected: int
    attachments_present: int
    attachments: list[SubmissionAttachmentPublic]


class SubmissionList(BaseModel):
    items: list[SubmissionPublic]
    #: Pass as ``cursor`` for the next page; null on the last one.
    next_cursor: str | None


class SubmissionHistoryEntry(BaseModel):
    instance_id: str
    deprecated_id: str | None
    current: bool
    superseded_by: str | None
    received_at: str | None
    submitter: str | None
    device: str | None
    version: str | None


class SubmissionDetail(SubmissionPublic):
    """One submission with every version of its record the caller may read, oldest first."""

    history: list[SubmissionHistoryEntry]
    versions: list[SubmissionPublic]


class ReviewBody(BaseModel):
    """``PATCH /api/v1/submissions/{instance_id}/review``: the new state (``hasIssues`` is accepted for
    ``needs_review``) and an optional comment."""

    state: str = Field(max_length=30)
    comment: str | None = Field(default=None, max_length=2000)


class CommentBody(BaseModel):
    comment: str = Field(max_length=2000)


class ReviewStepPublic(BaseModel):
    """One review step: a state change (``from_state`` → ``to_state``), a comment, or both."""

    id: int
    instance_id: str
    author: str | None
    at: str | None
    from_state: str | None
    to_state: str | None
    comment: str | None


class ReviewResult(BaseModel):
    instance_id: str
    review_state: str
    step: ReviewStepPublic


class ReviewSteps(BaseModel):
    review_state: str
    items: list[ReviewStepPublic]
