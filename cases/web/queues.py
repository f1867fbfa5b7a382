"""Web pages of cases: queues (see app.web.render for the page conventions)."""

from __future__ import annotations

from app.web.render import NavLink, web_router

router = web_router()
#: this module's entries in the top navigation
NAV: tuple[NavLink, ...] = ()
