"""What geodata adds to the sync read API: the ``site=CODE`` filter and each submission's site code.

Registered through the capability (``submission_filters``/``submission_fields``), so sync lists and
describes submissions without knowing the site table.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from geodata import queries
from sync.models import Submission


def site_condition(session: Session, code: str) -> Any:
    """Submissions mapped to the site with this code (none when no site has it)."""
    site_id = queries.site_id_by_code(session, code)
    return Submission.site_id == (site_id if site_id is not None else -1)


def site_fields(session: Session, submissions: list[Submission]) -> dict[int, dict[str, Any]]:
    """``{"site": code}`` of each submission mapped onto a site."""
    codes = queries.codes_of(session, [s.site_id for s in submissions if s.site_id is not None])
    return {s.id: {"site": codes[s.site_id]} for s in submissions if s.site_id in codes}
