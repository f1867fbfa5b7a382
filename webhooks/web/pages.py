"""``/webhooks`` (administrators): the endpoints with their state and pending deliveries, a flag when
one was paused by failures, the latest deliveries with a replay button, pause/resume, and a form
to add an endpoint whose secret is shown once. The page calls the same services as the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from app.deps import SessionDep, SettingsDep
from app.errors import DomainError, Invalid
from app.http_security import FORM_URLENCODED, MULTIPART, takes
from app.identity import Actor, Role
from app.timeutil import as_utc
from app.web.i18n import N_, gettext
from app.web.render import NavLink, WebActorDep, redirect, render, require, web_router
from webhooks import endpoints, queries

router = web_router()
NAV: tuple[NavLink, ...] = (NavLink("/webhooks", N_("Webhooks"), roles=("admin",), order=80),)
EVENT_NAMES = {
    "submission.created": N_("New submission"),
    "submission.edited": N_("Submission edited"),
    "submission.reviewed": N_("Submission reviewed"),
    "site.stage_changed": N_("Site stage changed"),
    "case.transition": N_("Case moved on (no identifying data)"),
}
STATE_NAMES = {"pending": (N_("Waiting"), "warn"), "delivered": (N_("Delivered"), "ok"),
               "failed": (N_("Failed"), "bad")}
PAUSED = {"admin": N_("Paused by an administrator"), "failures": N_("Paused after repeated failures"),
          "gone": N_("Stopped: the receiver answered 410 Gone")}
DONE = {"paused": N_("Endpoint paused: events wait until you resume it."),
        "resumed": N_("Endpoint resumed: what waited is being sent."),
        "replayed": N_("Delivery queued again: it will be sent in a moment.")}
MESSAGES = {"webhook.bad_url": N_("Type an address starting with http:// or https://, "
                                  "without a user name or password."),
            "webhook.bad_event": N_("Choose at least one event."),
            "webhook.unknown_form": N_("Choose a form from the list.")}
FIELDS = {"webhook.bad_url": "url", "webhook.bad_event": "events", "webhook.unknown_form": "form"}


def _when(value: datetime | None) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M") if value else "—"


def _page(request: Request, session: Session, actor: Actor, *, form: dict[str, Any] | None = None,
          errors: dict[str, str] | None = None, created: dict[str, Any] | None = None,
          status_code: int = 200) -> Response:
    listing = endpoints.listing(session)
    urls = {e.id: e.url for e in listing.endpoints}
    shown = []
    for e in listing.endpoints:
        if e.active:
            state = (gettext("Active"), "ok")
        else:
            state = (gettext(PAUSED.get(e.paused_reason or "admin", PAUSED["admin"])),
                     "bad" if e.paused_reason in ("failures", "gone") else "warn")
        shown.append({"id": e.id, "url": e.url, "form": e.form, "description": e.description, "active": e.active,
                      "events": [gettext(EVENT_NAMES[n]) for n in e.events if n in EVENT_NAMES], "state": state,
                      "pending": e.pending, "failures": e.consecutive_failures, "paused_at": _when(e.paused_at)})
    deliveries = []
    for d in endpoints.delivery_list(session, limit=20).deliveries:
        name, badge = STATE_NAMES.get(d.state, (d.state, ""))
        deliveries.append({"id": d.id, "url": urls.get(d.endpoint_id, "—"), "state": gettext(name), "badge": badge,
                           "event": gettext(EVENT_NAMES.get(d.event, d.event)), "attempts": d.attempts,
                           "created": _when(d.created_at), "last": d.last_status or (d.last_error and "—") or "",
                           "error": d.last_error, "replayable": d.state != "pending"})
    done = request.query_params.get("done")
    return render(request, "webhooks/index.html", {
        "endpoints": shown, "attention": listing.attention, "deliveries": deliveries,
        "event_choices": [(name, gettext(label)) for name, label in EVENT_NAMES.items()],
        "forms": queries.form_choices(session), "form": form or {"events": []}, "errors": errors or {},
        "created": created, "done": gettext(DONE[done]) if done in DONE else None,
    }, status_code=status_code)


@router.get("/webhooks", response_class=HTMLResponse)
def webhooks_page(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    """Endpoints, their state and the latest deliveries (administrators)."""
    require(actor, Role.admin)
    return _page(request, session, actor)


@router.post("/webhooks", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def add_endpoint(request: Request, actor: WebActorDep, session: SessionDep, settings: SettingsDep,
                 url: str = Form(""), events: list[str] = Form([]), form: str = Form(""),
                 description: str = Form("")) -> Response:
    """Register an endpoint; the page shows its secret once."""
    require(actor, Role.admin)
    typed = {"url": url[:2000], "form": form[:200], "description": description[:300], "events": events}
    try:
        made = endpoints.register(session, url=url, events=events, form=form or None, description=description,
                                  server_secret=settings.secret,
                                  allow_private=request.app.state.webhook_settings.allow_private, actor=actor)
    except DomainError as exc:
        session.rollback()
        message = gettext(MESSAGES[exc.code]) if exc.code in MESSAGES else exc.message
        return _page(request, session, actor, form=typed, errors={FIELDS.get(exc.code, "url"): message},
                     status_code=exc.status_code)
    created = {"url": made.endpoint.url, "secret": made.secret}
    return _page(request, session, actor, created=created, status_code=201)


@router.post("/webhooks/{endpoint_id}/active", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def set_active(request: Request, endpoint_id: int, actor: WebActorDep, session: SessionDep,
               active: str = Form("")) -> Response:
    """Pause (events wait) or resume (what waited is sent) an endpoint."""
    require(actor, Role.admin)
    if active not in ("0", "1"):
        raise Invalid(gettext("Choose to pause or resume."), code="webhook.invalid_active")
    endpoints.update(session, endpoint_id, allow_private=True, active=active == "1", actor=actor)
    return redirect("/webhooks?done=" + ("resumed" if active == "1" else "paused"))


@router.post("/webhooks/deliveries/{delivery_id}/replay", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def replay(request: Request, delivery_id: int, actor: WebActorDep, session: SessionDep) -> Response:
    """Send a delivery again (same body and event id)."""
    require(actor, Role.admin)
    endpoints.replay(session, delivery_id, actor=actor)
    return redirect("/webhooks?done=replayed")

