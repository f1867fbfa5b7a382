"""The geodata capability's web pages, one module per group of pages."""

from __future__ import annotations

from fastapi import FastAPI

from geodata.web import site_map, sites

NAV = (*site_map.NAV, *sites.NAV)


def install(app: FastAPI) -> None:
    app.include_router(site_map.router)
    app.include_router(sites.router)

