"""What the reports capability brings: the coordinators' dashboard at ``/`` (KPIs with their trends,
sync health), computed from the other capabilities' services and SQL aggregates, and the exports
of a form's submissions (``reports.exports``; API routes in ``reports.routes``)."""

from __future__ import annotations

from fastapi import FastAPI

from app.capability import Capability
from reports import export_routes, routes, web
from reports.cli import cli as export_cli


def install(app: FastAPI) -> None:
    """The exports' routes, and the background exports' routes and runner (``reports.export_routes``)."""
    routes.install(app)
    export_routes.install(app)


capability = Capability(name="reports", install=install, install_web=web.install, nav=web.NAV, cli=export_cli,
                        cli_name="export")
