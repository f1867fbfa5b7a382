"""HTTP routes of the sync capability: OpenRosa (this module) and the JSON API (``api_routes``)."""

from fastapi import APIRouter, FastAPI

router = APIRouter()


def install(app: FastAPI) -> None:
    from sync.api_routes import router as api_router

    app.include_router(router)
    app.include_router(api_router)
