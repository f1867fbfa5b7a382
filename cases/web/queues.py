"""Web pages of cases: the queues of decisions and the organisation's figures (see app.web.render
for the page conventions).

* ``/cases/approvals``: plans and closures waiting for a second person (``cases.inbox.approvals``);
* ``/cases/transfers``: referrals and transfers waiting for my NGO to accept, and (coordinators)
  the transfers ordered and where each stands;
* ``/cases/review``: case-form submissions kept restricted for a coordinator (``cases.review``);
* ``/cases/duplicates``: candidate pairs without identifying fields, merge (``cases.duplicates``);
* ``/cases/kpi`` and ``/cases/kpi.csv``: the child-labour indicator as ``GET /api/v1/kpis/child-labour``;
* ``/cases/handoff``: register a tablet for myself and show its ODK Collect QR code once.

Every decision calls the service the JSON API calls, with the same checks. These paths are
registered before ``/cases/{code}`` (``cases.web.install``), which would otherwise match them.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import select

from app import accounts
from app.collect import collect_settings, device_server_url, encode_settings
from app.deps import BlobsDep, SessionDep, SettingsDep
from app.errors import DomainError
from app.http_security import FORM_URLENCODED, MULTIPART, takes
from app.models import Device
from app.routes import public_base_url
from app.timeutil import utcnow
from app.web.i18n import N_, gettext
from app.web.qr import qr_svg
from app.web.render import NavLink, WebActorDep, redirect, render, require, web_router
from cases import access, duplicates, inbox, kpi, lifecycle, queries, review, transitions
from cases.schemas import ChildLabourKpiPublic
from cases.web.case import STATE_LABELS

router = web_router()
#: this module's entries in the top navigation (the case list links to approvals and transfers when
#: something waits there)
NAV: tuple[NavLink, ...] = (
    # Coordinators reach the review queue, duplicates and the indicator from /cases (the case workspace's own
    # links, cases/queue_nav.html) and the dashboard: the top navigation stays one line on a laptop.
    NavLink("/cases/kpi", N_("Indicator"), roles=("caseworker",), order=55),
    NavLink("/cases/handoff", N_("Prepare a tablet"), roles=("caseworker",), order=56),
)
FORM = {"openapi_extra": takes(FORM_URLENCODED, MULTIPART)}

# -- words shown for the API's codes -----------------------------------------------------

STATES = STATE_LABELS  # one wording of the case states for every case page
ACTIONS = {
    "approve_plan": N_("Approve the plan"), "reject_plan": N_("Send the plan back"),
    "approve_closure": N_("Approve the closure"), "reject_closure": N_("Send the closure back"),
    "accept": N_("Accept the case"), "decline": N_("Decline"),
}
REQUESTS = {"plan": N_("Case plan"), "closure": N_("Closure")}
REASONS = {
    "withdrawn_and_supported": N_("withdrawn from work and supported"), "turned_18": N_("turned 18"),
    "lost_to_follow_up": N_("lost to follow-up"), "consent_withdrawn": N_("consent withdrawn"), "death": N_("death"),
    "transferred_out": N_("transferred out"), "duplicate": N_("duplicate"),
}
RISKS = {"low": N_("low"), "medium": N_("medium"), "high": N_("high")}
MATCHES = {"name_year": N_("same name and year of birth"), "name_site": N_("same name and site"),
           "phone": N_("same caregiver phone")}
COMPANIONS = (("identified", N_("Children identified")), ("in_services", N_("Children who received a service")),
              ("withdrawn", N_("Children withdrawn from work")), ("relapses", N_("Relapses")),
              ("lost_to_follow_up", N_("Lost to follow-up")))
BREAKDOWNS = (("by_organisation", N_("By organisation")), ("by_province", N_("By province")),
              ("by_site", N_("By site")))
#: Refusals shown often, in the reader's language; any other keeps the service's English message.
REASON_NEEDED = N_("Give a reason: it is needed for this decision.")
MESSAGES = {
    "case.reason": REASON_NEEDED,
    "case.four_eyes": N_("Another person must decide: you made this request yourself."),
    "case.invalid_transition": N_("This case has moved on since the page was shown; reload the page."),
    "case.no_consent_to_share": N_("There is no consent to share this case with a partner NGO."),
    "case.unknown_merge_target": N_("There is no such case to merge into."),
    "case.merge_self": N_("A case cannot be merged into itself."),
    "kpi.bad_period": N_("Choose whole months (YYYY-MM); the start must not be after the end."),
    "device.duplicate": N_("A tablet with this name exists already; choose another name."),
    "device.invalid_name": N_("Give the tablet a name (no slashes)."),
}
LABELS = {"states": STATES, "actions": ACTIONS, "requests": REQUESTS, "reasons": REASONS, "risks": RISKS,
          "matches": MATCHES}


def _message(exc: DomainError) -> str:
    return gettext(MESSAGES[exc.code]) if exc.code in MESSAGES else exc.message


def _page(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    return render(request, template, {"labels": LABELS, **context}, status_code=status_code)


# -- approvals ----------------------------------------------------------------------------


def _approvals(request: Request, actor: Any, session: Any, *, errors: dict[str, str] | None = None,
               typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    return _page(request, "cases/queue_approvals.html", {
        "items": inbox.approvals(session, actor=actor), "errors": errors or {}, "typed": typed or {},
        "done": request.query_params.get("done"), "done_case": request.query_params.get("case")},
        status_code=status_code)


@router.get("/cases/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    require(actor, "caseworker", "coordinator")
    return _approvals(request, actor, session)


@router.post("/cases/approvals/{code}", **FORM)
def decide_approval(request: Request, code: str, actor: WebActorDep, session: SessionDep,
                    action: str = Form(""), reason: str = Form("")) -> Response:
    """Approve or send back a plan or a closure (``POST /api/v1/cases/{code}/transitions``)."""
    require(actor, "caseworker", "coordinator")
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    if action not in inbox.DECISIONS:
        action = ""
    try:
        transitions.transition(session, actor=actor, case=case, action=action, reason=reason.strip() or None)
    except DomainError as exc:
        session.rollback()
        return _approvals(request, actor, session, errors={case.code: _message(exc)}, typed={case.code: reason},
                          status_code=exc.status_code)
    return redirect(f"/cases/approvals?done={action}&case={case.code}")


# -- transfers ----------------------------------------------------------------------------


def _transfers(request: Request, actor: Any, session: Any, *, errors: dict[str, str] | None = None,
               typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    return _page(request, "cases/queue_transfers.html", {
        "incoming": inbox.incoming(session, actor=actor), "ordered": inbox.transfers_ordered(session, actor=actor),
        "now": utcnow().isoformat(), "errors": errors or {}, "typed": typed or {},
        "done": request.query_params.get("done"), "done_case": request.query_params.get("case")},
        status_code=status_code)


@router.get("/cases/transfers", response_class=HTMLResponse)
def transfers_page(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    require(actor, "caseworker", "coordinator")
    return _transfers(request, actor, session)


@router.post("/cases/transfers/{code}", **FORM)
def decide_transfer(request: Request, code: str, actor: WebActorDep, session: SessionDep,
                    action: str = Form(""), reason: str = Form("")) -> Response:
    """Accept or decline a referral or transfer to my NGO (``POST /api/v1/cases/{code}/transitions``)."""
    require(actor, "caseworker", "coordinator")
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=code)
    if action not in ("accept", "decline"):
        action = ""
    try:
        transitions.transition(session, actor=actor, case=case, action=action, reason=reason.strip() or None)
    except DomainError as exc:
        session.rollback()
        return _transfers(request, actor, session, errors={case.code: _message(exc)}, typed={case.code: reason},
                          status_code=exc.status_code)
    return redirect(f"/cases/transfers?done={action}&case={case.code}")


# -- review queue -------------------------------------------------------------------------


def _review(request: Request, actor: Any, session: Any, *, errors: dict[str, str] | None = None,
            typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    return _page(request, "cases/queue_review.html", {
        "items": review.review_queue(session, actor=actor), "errors": errors or {}, "typed": typed or {},
        "done": request.query_params.get("done"), "done_case": request.query_params.get("case")},
        status_code=status_code)


@router.get("/cases/review", response_class=HTMLResponse)
def review_page(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    require(actor, "coordinator")
    return _review(request, actor, session)


@router.post("/cases/review/{instance_id}", **FORM)
def decide_review(request: Request, instance_id: str, actor: WebActorDep, session: SessionDep,
                  settings: SettingsDep, blobs: BlobsDep, decision: str = Form(""), note: str = Form("")) -> Response:
    """Approve or reject a flagged submission (``POST /api/v1/cases/review/{instance_id}``)."""
    require(actor, "coordinator")
    try:
        review.resolve_review(session, actor=actor, instance_id=instance_id, decision=decision,
                              note=note.strip()[:200] or None, settings=settings, blobs=blobs)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        session.rollback()
        return _review(request, actor, session, errors={instance_id: _message(exc)}, typed={instance_id: note},
                       status_code=exc.status_code)
    return redirect(f"/cases/review?done={decision}")


# -- duplicates ---------------------------------------------------------------------------


def _duplicates(request: Request, actor: Any, session: Any, *, errors: dict[str, str] | None = None,
                typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    return _page(request, "cases/duplicates.html", {
        "pairs": duplicates.duplicate_candidates(session, actor=actor), "errors": errors or {}, "typed": typed or {},
        "done": request.query_params.get("done"), "done_case": request.query_params.get("case")},
        status_code=status_code)


@router.get("/cases/duplicates", response_class=HTMLResponse)
def duplicates_page(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    require(actor, "coordinator")
    return _duplicates(request, actor, session)


@router.post("/cases/duplicates/merge", **FORM)
def merge_duplicate(request: Request, actor: WebActorDep, session: SessionDep, pair: str = Form(""),
                    direction: str = Form(""), reason: str = Form("")) -> Response:
    """Merge one case of a pair into the other, with a reason (``POST /api/v1/cases/{code}/merge``)."""
    require(actor, "coordinator")
    codes = pair.split(":")
    if len(codes) != 2 or direction not in ("0", "1"):
        raise DomainError(gettext("Choose which case to keep."), code="case.merge_direction", status_code=400)
    source, into = (codes[1], codes[0]) if direction == "0" else (codes[0], codes[1])
    access.require_case_role(actor)
    case = access.visible_case(session, actor=actor, code=source)
    errors: dict[str, str] = {}
    if not reason.strip():
        errors[pair] = gettext(REASON_NEEDED)
    else:
        try:
            duplicates.merge(session, actor=actor, case=case, into=into, reason=reason.strip())
        except DomainError as exc:
            session.rollback()
            errors[pair] = _message(exc)
    if errors:
        return _duplicates(request, actor, session, errors=errors, typed={pair: reason}, status_code=400)
    return redirect(f"/cases/duplicates?done=merge&case={case.code}")


# -- the child-labour indicator -----------------------------------------------------------

#: At most this many months are drawn in the trend (one KPI reading each, as the API gives them).
TREND_MONTHS = 12


def _months(start: date, end: date) -> list[tuple[date, date]]:
    out = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        first = date(year, month, 1)
        nxt = date(year + month // 12, month % 12 + 1, 1)
        out.append((first, date.fromordinal(nxt.toordinal() - 1)))
        year, month = nxt.year, nxt.month
    return out[-TREND_MONTHS:]


def _kpi(session: Any, actor: Any, date_from: str | None, date_to: str | None) -> dict[str, Any]:
    """The API's answer for the period, as ``GET /api/v1/kpis/child-labour`` computes it."""
    start, end = kpi.month_window(date_from or None, date_to or None, today=utcnow().date())
    result = kpi.child_labour_kpi(session, actor=actor, date_from=start, date_to=end)
    return ChildLabourKpiPublic.model_validate(result).model_dump(by_alias=True) | {"_start": start, "_end": end}


@router.get("/cases/kpi", response_class=HTMLResponse)
def kpi_page(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    require(actor, "admin", "coordinator", "caseworker")
    date_from, date_to = request.query_params.get("from", ""), request.query_params.get("to", "")
    errors: dict[str, str] = {}
    try:
        figures = _kpi(session, actor, date_from[:20], date_to[:20])
    except DomainError as exc:
        session.rollback()
        errors[(exc.details or {}).get("field") or "from"] = _message(exc)
        figures = _kpi(session, actor, None, None)
    trend = []
    for first, last in _months(figures["_start"], figures["_end"]):
        value = kpi.child_labour_kpi(session, actor=actor, date_from=first, date_to=last, audited=False)["value"]
        trend.append((first.strftime("%Y-%m"), value))
    status = 400 if errors else 200
    return _page(request, "cases/kpi.html", {
        "kpi": figures, "trend": trend, "companions": COMPANIONS, "breakdowns": BREAKDOWNS, "errors": errors,
        "typed": {"from": date_from, "to": date_to},
        "csv_query": f"from={figures['from'][:7]}&to={figures['to'][:7]}"}, status_code=status)


def kpi_rows(figures: dict[str, Any]) -> list[list[Any]]:
    """The aggregate table of one KPI answer: period, table, name, value (as the API shows them)."""
    period = [figures["from"], figures["to"]]
    rows = [[*period, "indicator", "value", figures["value"]]]
    companions = figures["companions"]
    rows += [[*period, "companions", name, companions[name]] for name, _ in COMPANIONS]
    rows += [[*period, "closed_by_reason", name, v] for name, v in companions["closed_by_reason"].items()]
    for key, _ in BREAKDOWNS:
        rows += [[*period, key.removeprefix("by_"), name, v] for name, v in figures[key].items()]
    return rows


@router.get("/cases/kpi.csv")
def kpi_csv(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    """The indicator's aggregate table as CSV (same figures and suppression as the API)."""
    require(actor, "admin", "coordinator", "caseworker")
    figures = _kpi(session, actor, request.query_params.get("from", "")[:20], request.query_params.get("to", "")[:20])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["from", "to", "table", "name", "value"])
    writer.writerows(kpi_rows(figures))
    name = f"child-labour-kpi-{figures['from'][:7]}-{figures['to'][:7]}.csv"
    return Response(out.getvalue().encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


# -- offline hand-off ---------------------------------------------------------------------


def _handoff(request: Request, actor: Any, session: Any, *, errors: dict[str, str] | None = None,
             name: str = "", qr: Any = None, created: str | None = None, status_code: int = 200) -> HTMLResponse:
    devices = list(session.exec(select(Device).where(Device.user_id == actor.user.id).order_by(Device.name)))
    open_cases = None
    if actor.role == "caseworker":
        open_cases = len(queries.open_cases_of(session, actor.organisation_id, lifecycle.OPEN_STATES))
    suggestion = f"{actor.user.username}-tablet-{len(devices) + 1}"
    return _page(request, "cases/handoff.html", {
        "devices": devices, "errors": errors or {}, "name": name or suggestion, "qr": qr, "created": created,
        "open_cases": open_cases}, status_code=status_code)


@router.get("/cases/handoff", response_class=HTMLResponse)
def handoff_page(request: Request, actor: WebActorDep, session: SessionDep) -> Response:
    require(actor, "caseworker", "monitor", "coordinator")
    return _handoff(request, actor, session)


@router.post("/cases/handoff", **FORM)
def register_tablet(request: Request, actor: WebActorDep, session: SessionDep, settings: SettingsDep,
                    name: str = Form("")) -> Response:
    """Register a tablet for myself and show its QR code once (as ``POST /api/v1/devices``)."""
    require(actor, "caseworker", "monitor", "coordinator")
    try:
        device, token = accounts.create_device(session, name=name, user=actor.user.id, actor=actor)
    except DomainError as exc:
        session.rollback()
        return _handoff(request, actor, session, errors={"name": _message(exc)}, name=name,
                        status_code=exc.status_code)
    url = device_server_url(public_base_url(request, settings), token)
    payload = encode_settings(collect_settings(url, f"asmfield {device.name}"))
    qr = qr_svg(payload, label=gettext("QR code to set up ODK Collect on the tablet %(name)s", name=device.name))
    return _handoff(request, actor, session, qr=qr, created=device.name)
