"""What geodata adds to the sync read API: the ``site=CODE`` filter and each submission's site code.

Registered through the capability (``submission_filters``/``submission_fields``), so sync lists and
describes submissions without knowing the site table.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from geodata.models import Site
from sync.models import Submission


def site_condition(session: Session, code: str) -> Any:
    """Submissions mapped to the site with this code (none when no site has it)."""
    site_id = session.exec(select(Site.id).where(Site.code == code)).first()
    return Submission.site_id == (site_id if site_id is not None else -1)


def site_fields(session: Session, submissions: list[Submission]) -> dict[int, dict[str, Any]]:
    """``{"site": code}`` of each submission mapped onto a site."""
    wanted = {s.site_id for s in submissions if s.site_id is not None}
    if not wanted:
        return {}
    codes = dict(session.exec(select(Site.id, Site.code).where(col(Site.id).in_(wanted))).all())
    return {s.id: {"site": codes[s.site_id]} for s in submissions if s.site_id in codes}
