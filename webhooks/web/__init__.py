"""The webhooks capability's web page (``/webhooks``, administrators)."""

from __future__ import annotations

from fastapi import FastAPI

from webhooks.web import pages

NAV = (*pages.NAV,)


def install(app: FastAPI) -> None:
    app.include_router(pages.router)
