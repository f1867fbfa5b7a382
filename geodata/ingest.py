"""Map each stored submission onto a site (called by ``app.pipeline``)."""

from __future__ import annotations

from sqlmodel import Session


def on_submission(session: Session, *, submission, form, version, settings) -> None:  # noqa: ANN001
    """Set ``submission.site_*`` from its location and recompute the site's stage."""
