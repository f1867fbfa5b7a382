"""The reports capability's web pages."""

from __future__ import annotations

from fastapi import FastAPI

from reports.web import dashboard

NAV = (*dashboard.NAV,)


def install(app: FastAPI) -> None:
    app.include_router(dashboard.router)
