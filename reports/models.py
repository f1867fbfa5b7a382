"""The reports capability reads the other capabilities' tables for its figures; its own table is the
queue of background exports (``export_job``, issue 15): who asked for what, how far it got, and where
the finished file lies (under ``DATA_DIR/exports``) until it expires."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel

from app.timeutil import utcnow


class ExportJob(SQLModel, table=True):
    """One export asked for in the background: queued → running → done | failed.

    ``spec`` holds the export's parameters as they were sent (the same names as the stable CSV URL's
    query string), parsed again when the job runs. A runner claims a job with one conditional UPDATE
    (``status='queued'``), so two processes never run the same job; ``claimed_by`` and ``heartbeat_at``
    let a restarted server requeue a job whose runner died.
    """

    __tablename__ = "export_job"
    __table_args__ = (Index("ix_export_job_status_created", "status", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    xml_form_id: str = Field(max_length=200)
    format: str = Field(max_length=20)
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    #: queued | running | done | failed
    status: str = Field(default="queued", max_length=20)
    rows_done: int = 0
    rows_total: int | None = None
    #: the file's name under DATA_DIR/exports (never a path from outside)
    file_name: str | None = Field(default=None, max_length=200)
    size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    #: which runner holds the job: "<host>:<pid>:<runner id>"
    claimed_by: str | None = Field(default=None, max_length=200)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None
    #: when the file is deleted (finished_at + EXPORT_RETENTION_DAYS)
    expires_at: datetime | None = None
