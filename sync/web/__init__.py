"""The sync capability's web pages, one module per group of pages."""

from __future__ import annotations

from fastapi import FastAPI

from sync.web import submissions

NAV = (*submissions.NAV,)


def install(app: FastAPI) -> None:
    app.include_router(submissions.router)

