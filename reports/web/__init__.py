"""The reports capability's web pages."""

from __future__ import annotations

from fastapi import FastAPI

from reports.web import dashboard, exports

NAV = (*dashboard.NAV, *exports.NAV)


def install(app: FastAPI) -> None:
    app.include_router(dashboard.router)
    app.include_router(exports.router)
