"""HTTP routes of the geodata capability (thin: parse, authorise, call the service)."""

from fastapi import APIRouter, FastAPI

router = APIRouter()


def install(app: FastAPI) -> None:
    app.include_router(router)
