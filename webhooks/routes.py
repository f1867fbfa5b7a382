"""HTTP routes of the webhooks capability (admins only; thin: parse, call the service), and the
delivery worker started and stopped with the app."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response

from app.auth import AdminActor
from app.deps import SessionDep, SettingsDep
from webhooks import delivery, endpoints
from webhooks.schemas import (
    DeliveryList,
    DeliveryPublic,
    EndpointCreated,
    EndpointIn,
    EndpointList,
    EndpointPublic,
    EndpointUpdate,
)
from webhooks.settings import WebhookSettings

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
State = Literal["pending", "delivered", "failed"]


def _settings(request: Request) -> WebhookSettings:
    return request.app.state.webhook_settings


@router.get("", response_model=EndpointList)
def list_endpoints(actor: AdminActor, session: SessionDep) -> EndpointList:
    """List webhook endpoints (never their secrets); ``attention`` when one was paused by failures."""
    return endpoints.listing(session)


@router.post("", response_model=EndpointCreated, status_code=201)
def create_endpoint(body: EndpointIn, actor: AdminActor, session: SessionDep, settings: SettingsDep,
                    request: Request) -> EndpointCreated:
    """Register an endpoint; the answer carries its signing secret, shown only this once."""
    made = endpoints.register(session, url=body.url, events=body.events, form=body.form, description=body.description,
                              server_secret=settings.secret, allow_private=_settings(request).allow_private,
                              actor=actor)
    return EndpointCreated(**EndpointPublic.of(made.endpoint).model_dump(), secret=made.secret)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryPublic)
def get_delivery(delivery_id: int, actor: AdminActor, session: SessionDep) -> DeliveryPublic:
    """One delivery with every attempt (status code, error, duration)."""
    return endpoints.delivery_detail(session, delivery_id)


@router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryPublic, status_code=201)
def replay_delivery(delivery_id: int, actor: AdminActor, session: SessionDep) -> DeliveryPublic:
    """Send a delivered or failed delivery again (a new delivery, same body and event id)."""
    return DeliveryPublic.of(endpoints.replay(session, delivery_id, actor=actor))


@router.get("/{endpoint_id}", response_model=EndpointPublic)
def get_endpoint(endpoint_id: int, actor: AdminActor, session: SessionDep) -> EndpointPublic:
    """One endpoint (never its secret)."""
    return endpoints.public(session, endpoint_id)


@router.patch("/{endpoint_id}", response_model=EndpointPublic)
def update_endpoint(endpoint_id: int, body: EndpointUpdate, actor: AdminActor, session: SessionDep,
                    request: Request) -> EndpointPublic:
    """Change URL, events, form filter or description; ``active`` false pauses, true resumes."""
    endpoints.update(session, endpoint_id, allow_private=_settings(request).allow_private, url=body.url,
                     events=body.events, form=body.form or None, clear_form=body.form == "",
                     description=body.description, active=body.active, actor=actor)
    return endpoints.public(session, endpoint_id)


@router.delete("/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: int, actor: AdminActor, session: SessionDep) -> Response:
    """Remove an endpoint with its deliveries."""
    endpoints.delete(session, endpoint_id, actor=actor)
    return Response(status_code=204)


@router.get("/{endpoint_id}/deliveries", response_model=DeliveryList)
def list_deliveries(endpoint_id: int, actor: AdminActor, session: SessionDep, state: State | None = None,
                    limit: Annotated[int, Query(ge=1, le=500)] = 50) -> DeliveryList:
    """The newest deliveries of an endpoint, with their attempts."""
    return endpoints.delivery_list(session, endpoint_id=endpoint_id, state=state, limit=limit)


def install(app: FastAPI) -> None:
    """Mount the routes; start the delivery worker with the app and stop it at shutdown."""
    app.state.webhook_settings = settings = WebhookSettings()
    app.include_router(router)
    if not settings.worker:
        return

    def start() -> None:
        worker = delivery.Worker(delivery.Sender(app.state.engine, app.state.settings.secret, settings))
        app.state.webhook_worker = worker
        worker.start()

    def stop() -> None:
        worker = getattr(app.state, "webhook_worker", None)
        if worker is not None:
            worker.stop()
            app.state.webhook_worker = None

    app.router.add_event_handler("startup", start)
    app.router.add_event_handler("shutdown", stop)
