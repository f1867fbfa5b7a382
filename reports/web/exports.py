"""The exports page ``/exports`` (issue 15): choose a form, a format, filters and options; the export
runs in the background and the page lists the person's exports with their progress (a small script
polls ``GET /api/v1/exports/{id}``) and a download link when done.

The page calls what the API calls (``reports.exports.jobs``): the same checks, the same rules on
children's data, the same files. ``/exports?form=ID`` opens it with that form chosen (a link from a
form's page).
"""

from __future__ import annotations

from typing import Any

from fastapi import BackgroundTasks, Form, Request
from fastapi.responses import Response

from app.deps import HooksDep, SessionDep
from app.errors import DomainError
from app.http_security import FORM_URLENCODED, takes
from app.identity import Actor
from app.timeutil import as_utc
from app.web.i18n import N_, current_language, gettext
from app.web.render import NavLink, WebActorDep, field_errors, redirect, render, web_router
from forms.models import CASE_FORM_KINDS
from forms.service import forms_visible_to
from reports.export_routes import kick
from reports.exports import jobs
from reports.exports.spec import REVIEW_STATES

router = web_router()
#: this module's entry in the top navigation (every role exports what it may read)
NAV: tuple[NavLink, ...] = (NavLink("/exports", N_("Exports"), order=45),)

FORMAT_NAMES = {"csv": N_("CSV (zip: one file per table)"), "xlsx": N_("Excel workbook (XLSX)"),
                "geojson": N_("GeoJSON (map)"), "gpkg": N_("GeoPackage (QGIS)"), "media": N_("Photos (zip)")}
STATUS_NAMES = {"queued": N_("Waiting"), "running": N_("Running"), "done": N_("Ready"), "failed": N_("Failed")}
REVIEW_NAMES = {"received": N_("Received"), "needs_review": N_("Has issues"), "approved": N_("Approved"),
                "rejected": N_("Rejected")}
#: Refusals shown beside a field, in the reader's language (else the service's English message).
MESSAGES = {"form.not_found": N_("Choose a form."), "export.unknown_site": N_("No site has this code."),
            "export.unknown_version": N_("The form has no such version."),
            "export.forbidden": N_("You may not export this form."),
            "export.case_data": N_("Case forms are exported only as the case rules allow.")}


def _exportable(session: Any, actor: Actor) -> list[tuple[str, str]]:
    """(form id, title) of the forms ``actor`` may export (``reports.exports.rows`` decides in the end)."""
    out = []
    for form in forms_visible_to(session, actor):
        case = form.kind in CASE_FORM_KINDS
        if (actor.role == "caseworker") != case and not (case and actor.role == "coordinator"):
            continue
        out.append((form.xml_form_id, f"{form.title} ({form.xml_form_id})"))
    return out


def _when(value: Any) -> str:
    return as_utc(value).strftime("%Y-%m-%d %H:%M") if value else ""


def _job_rows(session: Any, actor: Actor) -> list[dict[str, Any]]:
    rows = []
    for job in jobs.my_jobs(session, actor=actor):
        public = jobs.public(job)
        rows.append({"job": public, "format": gettext(FORMAT_NAMES.get(job.format, job.format)),
                     "status": gettext(STATUS_NAMES.get(job.status, job.status)), "created": _when(job.created_at),
                     "expires": _when(job.expires_at)})
    return rows


def _page(request: Request, session: Any, actor: Actor, *, values: dict[str, str], errors: dict[str, str],
          status_code: int = 200) -> Response:
    context = {
        "forms": _exportable(session, actor),
        "format_options": [(k, gettext(v)) for k, v in FORMAT_NAMES.items()],
        "review_options": [(k, gettext(REVIEW_NAMES[k])) for k in REVIEW_STATES],
        "values": values, "errors": errors, "rows": _job_rows(session, actor),
        "status_names": {k: gettext(v) for k, v in STATUS_NAMES.items()},
        "retention_days": request.app.state.settings.export_retention_days,
    }
    return render(request, "reports/exports.html", context, status_code=status_code)


@router.get("/exports")
def exports_page(request: Request, actor: WebActorDep, session: SessionDep, form: str | None = None) -> Response:
    """The export form and the person's exports with their progress."""
    values = {"form": form or "", "format": "csv", "headers": "labels", "choices": "labels",
              "language": current_language()}
    return _page(request, session, actor, values=values, errors={})


@router.post("/exports", openapi_extra=takes(FORM_URLENCODED))
def queue_export_page(request: Request, actor: WebActorDep, session: SessionDep, hooks: HooksDep,
                      background: BackgroundTasks, form: str = Form(""), format: str = Form("csv"),  # noqa: A002
                      since: str = Form(""), until: str = Form(""), review_state: str = Form(""),
                      site: str = Form(""), province: str = Form(""), min_version: str = Form(""),
                      max_version: str = Form(""), headers: str = Form(""), choices: str = Form(""),
                      language: str = Form(""), split_multiple: str = Form(""), include_edits: str = Form(""),
                      geometry_field: str = Form("")) -> Response:
    """Queue an export (as ``POST /api/v1/exports``) and come back to the list."""
    values = {"form": form, "format": format, "since": since, "until": until, "review_state": review_state,
              "site": site, "province": province, "min_version": min_version, "max_version": max_version,
              "headers": headers, "choices": choices, "language": language, "split_multiple": split_multiple,
              "include_edits": include_edits, "geometry_field": geometry_field}
    values = {k: v.strip() for k, v in values.items()}
    try:
        job = jobs.submit(session, actor=actor, hooks=hooks, params={k: v for k, v in values.items() if v})
    except DomainError as exc:
        session.rollback()
        errors = {k: gettext(MESSAGES[exc.code]) if exc.code in MESSAGES else exc.message
                  for k in field_errors(exc, "form")}
        return _page(request, session, actor, values=values, errors=errors, status_code=exc.status_code)
    background.add_task(kick, request)
    return redirect(f"/exports?queued={job.id}#job-{job.id}")
