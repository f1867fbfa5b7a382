"""Open or advance child-labour cases from case-form submissions (called by ``app.pipeline``)."""

from __future__ import annotations

from sqlmodel import Session


def on_submission(session: Session, *, submission, form, version, actor, settings) -> None:  # noqa: ANN001
    """Open a case from an intake, advance one from a follow-up; flag what cannot be applied."""
