"""What the reports capability brings: the coordinators' dashboard at ``/`` (KPIs with their trends,
sync health), computed from the other capabilities' services and SQL aggregates."""

from __future__ import annotations

from app.capability import Capability
from reports import web

capability = Capability(name="reports", install_web=web.install, nav=web.NAV)
