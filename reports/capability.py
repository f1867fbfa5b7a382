"""What the reports capability brings: the coordinators' dashboard at ``/`` (KPIs with their trends,
sync health), computed from the other capabilities' services and SQL aggregates, and the exports
of a form's submissions (``reports.exports``; API routes in ``reports.routes``)."""

from __future__ import annotations

from app.capability import Capability
from reports import routes, web

capability = Capability(name="reports", install=routes.install, install_web=web.install, nav=web.NAV)
