"""The cases capability's web pages, one module per group of pages."""

from __future__ import annotations

from fastapi import FastAPI

from cases.web import case, queues

NAV = (*case.NAV, *queues.NAV)


def install(app: FastAPI) -> None:
    # The queues' fixed paths (/cases/approvals, /cases/kpi…) before /cases/{code}, which would match them.
    app.include_router(queues.router)
    app.include_router(case.router)

