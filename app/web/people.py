"""Web pages: organisations, users and devices (admins manage; coordinators read; everyone their own devices)."""

from __future__ import annotations

from app.web.render import NavLink, web_router

router = web_router()
NAV: tuple[NavLink, ...] = ()
