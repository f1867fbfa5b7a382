"""One domain error type with a stable code and an HTTP status.

Services raise ``DomainError`` (or a subclass); ``app.main`` renders it as JSON for
``/api/...`` and as an OpenRosaResponse for OpenRosa routes. The JSON shape is pinned by
``tests/app/test_errors.py``::

    {"error": {"code": "form.not_found", "message": "...", "details": {...}}}
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the client can act on. ``code`` is stable; ``message`` is for humans."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.details = details or {}
        #: Extra response headers as (name, value) pairs; a name may repeat (two WWW-Authenticate).
        self.headers = headers or []


class BadRequest(DomainError):
    status_code, code = 400, "bad_request"


class Unauthorized(DomainError):
    status_code, code = 401, "auth.required"


class Forbidden(DomainError):
    status_code, code = 403, "auth.forbidden"


class NotFound(DomainError):
    status_code, code = 404, "not_found"


class Conflict(DomainError):
    status_code, code = 409, "conflict"


class PayloadTooLarge(DomainError):
    status_code, code = 413, "payload_too_large"


class UnsupportedMedia(DomainError):
    status_code, code = 415, "unsupported_media_type"


class Invalid(DomainError):
    status_code, code = 422, "invalid"
