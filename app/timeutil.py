"""Time helpers. Timestamps are timezone-aware UTC everywhere (SQLModel's UTCDateTime columns
refuse naive values and return aware UTC on SQLite and PostgreSQL alike)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive value is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def isoformat(value: datetime | None) -> str | None:
    """ISO 8601 ending in Z, for JSON answers."""
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")
