"""The forms capability's web pages, one module per group of pages."""

from __future__ import annotations

from fastapi import FastAPI

from forms.web import forms

NAV = (*forms.NAV,)


def install(app: FastAPI) -> None:
    app.include_router(forms.router)

