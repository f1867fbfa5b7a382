"""The reports capability's refusals: one class per stable error code (``export.*``), rendered only
by ``app.main``'s JSON error writer."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, Invalid, NotFound


class ExportBadParam(Invalid):
    """A query parameter or spec value is wrong; ``details.field`` names it."""

    code = "export.bad_param"


class ExportUnknownVersion(Invalid):
    code = "export.unknown_version"


class ExportUnknownSite(Invalid):
    code = "export.unknown_site"


class ExportForbidden(Forbidden):
    """The caller may not export this form (by role, or caseworkers and site-visit data)."""

    code = "export.forbidden"


class ExportCaseData(Forbidden):
    """Case forms are exported only as the cases capability's rules allow (not by admins or monitors)."""

    code = "export.case_data"


class ExportTooLarge(Invalid):
    """More rows than the format holds (an XLSX sheet holds 1,048,576 rows)."""

    code = "export.too_large"


class ExportJobNotFound(NotFound):
    """No background export with this id that belongs to the caller (another's looks absent)."""

    code = "export.job_not_found"


class ExportNotReady(Conflict):
    """The background export has no file to download (yet): queued, running or failed."""

    code = "export.not_ready"
