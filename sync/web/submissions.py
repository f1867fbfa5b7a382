"""Web pages of sync: the submissions list and one submission with its answers, photos, map, edit
history and review (see app.web.render for the page conventions).

Both pages call what the read API calls (``sync.reading``, ``sync.review``): the same roles, the
same filters, case data never (README's roles table). Reviewing is ``sync.review``'s, as the
``PATCH /api/v1/submissions/{id}/review`` route.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Query, Request
from fastapi.responses import Response

from app.deps import HooksDep, SessionDep
from app.errors import DomainError
from app.events import Hooks
from app.http_security import FORM_URLENCODED, MULTIPART, takes
from app.identity import Actor
from app.web.i18n import N_, current_language, gettext
from app.web.render import NavLink, WebActorDep, field_errors, redirect, render, web_router
from forms.models import FormVersion
from sync import reading, review
from sync.schemas import SubmissionPublic
from sync.web import answers

router = web_router()
#: this module's entries in the top navigation (the roles that read submissions: README's roles table)
NAV: tuple[NavLink, ...] = (NavLink("/submissions", N_("Submissions"), roles=("admin", "coordinator", "monitor"),
                                    order=30),)

PER_PAGE = 50
#: review state -> (ODK Central's name for it, badge class)
STATE_NAMES = {"received": (N_("Received"), ""), "needs_review": (N_("Has issues"), "warn"),
               "approved": (N_("Approved"), "ok"), "rejected": (N_("Rejected"), "bad")}
#: Refusals shown beside a field, in the reader's language (else the service's English message).
MESSAGES = {"review.empty": N_("Choose another state or write a comment."),
            "review.too_long": N_("A comment has at most 2000 characters."),
            "review.bad_state": N_("Choose a review state."),
            "review.forbidden": N_("Only coordinators and administrators review submissions."),
            "request.bad_date": N_("Write a date as 2026-03-01.")}
#: Names for the metadata questions forms leave unlabelled (XLSForm's start, end, today, deviceid…).
UNLABELLED = {"start": N_("Form opened"), "end": N_("Form finished"), "today": N_("Day of the survey"),
              "deviceid": N_("Device identifier"), "username": N_("Username on the device"),
              "phonenumber": N_("Phone number"), "email": N_("E-mail")}


def _message(exc: DomainError) -> str:
    known = MESSAGES.get(exc.code)
    return gettext(known) if known else exc.message


def _state(state: str | None) -> dict[str, str]:
    name, css = STATE_NAMES.get(state or "", (state or "—", ""))
    return {"name": gettext(name) if state in STATE_NAMES else name, "css": css, "value": state or ""}


def _images(item: SubmissionPublic) -> list[dict[str, Any]]:
    return [a.model_dump() for a in item.attachments
            if a.received and a.sha256 and (a.media_type or "").startswith("image/")]


def _row(item: SubmissionPublic, titles: dict[str, str]) -> dict[str, Any]:
    return {"item": item, "form_title": titles.get(item.form_id or "", item.form_id), "state": _state(item.review_state),
            "when": (item.received_at or "")[:16].replace("T", " "), "images": _images(item),
            "missing": item.attachments_expected - item.attachments_present}


@router.get("/submissions")
def submissions_page(request: Request, actor: WebActorDep, session: SessionDep, hooks: HooksDep,
                     form: str | None = None, review_state: str | None = None, device: str | None = None,
                     submitter: str | None = None, site: str | None = None,
                     since: Annotated[str | None, Query(alias="from")] = None,
                     until: Annotated[str | None, Query(alias="to")] = None,
                     attachments: str | None = None, mapped: str | None = None, page: str | None = None) -> Response:
    """Current submissions the reader may read, newest first, 50 a page, filtered as the URL says."""
    values = {"form": form or "", "review_state": review_state or "", "device": device or "",
              "submitter": submitter or "", "site": site or "", "from": since or "", "to": until or "",
              "attachments": attachments or "", "mapped": mapped or ""}
    number = int(page) if page and page.isdigit() and 0 < int(page) < 100_000 else 1
    forms = reading.searchable_forms(session, actor=actor, hooks=hooks)
    errors: dict[str, str] = {}
    status = 200
    try:
        found = reading.search_submissions(
            session, actor=actor, hooks=hooks, xml_form_id=form or None,
            review_state=review_state if review_state in review.STATES else None, submitter=submitter or None,
            since=since, until=until, device=device or None, site=site or None,
            attachments_missing=attachments == "missing", unmapped=mapped == "no", page=number, per_page=PER_PAGE)
    except DomainError as exc:
        session.rollback()
        field = str((exc.details or {}).get("field") or "form")
        errors = {{"since": "from", "until": "to", "xml_form_id": "form"}.get(field, field): _message(exc)}
        status = exc.status_code
        found = reading.Search(items=[], total=0, page=1, pages=1)
    kept = {k: v for k, v in values.items() if v}
    titles = {f.xml_form_id: f.title for f in forms}
    return render(request, "sync/submissions.html", {
        "rows": [_row(i, titles) for i in found.items], "found": found, "values": values, "errors": errors,
        "form_options": [(f.xml_form_id, f.title) for f in forms],
        "state_options": [(k, gettext(v[0])) for k, v in STATE_NAMES.items()],
        "staff": actor.role in reading.STAFF, "filtered": bool(kept),
        "here_without_page": "/submissions?" + (urlencode(kept) + "&" if kept else ""),
    }, status_code=status)


def _detail_context(request: Request, session: SessionDep, actor: Actor, hooks: Hooks,
                    instance_id: str) -> dict[str, Any]:
    submission, form = review.readable(session, actor=actor, hooks=hooks, instance_id=instance_id)
    detail = reading.get_submission(session, actor=actor, hooks=hooks, instance_id=instance_id)
    version = session.get(FormVersion, submission.form_version_id)
    lang = current_language()
    built = answers.build(version.fields if version else [], version.xform_xml if version else "", detail.data,
                          [a.model_dump() for a in detail.attachments], lang, instance_label=gettext("#%(n)s"),
                          unlabelled={k: gettext(v) for k, v in UNLABELLED.items()})
    points = built.points or ([{"lat": detail.lat, "lon": detail.lon, "label": gettext("Location")}]
                              if detail.lat is not None and detail.lon is not None else [])
    steps = review.history(session, actor=actor, hooks=hooks, instance_id=instance_id)
    current_state = review.state_of(session, actor=actor, hooks=hooks, instance_id=instance_id)
    return {
        "detail": detail, "form": form, "answers": built.rows, "points_json": json.dumps(points),
        "has_points": bool(points), "images": _images(detail), "state": _state(current_state),
        "steps": [{"step": s, "from": _state(s.from_state) if s.from_state else None,
                   "to": _state(s.to_state) if s.to_state else None,
                   "when": s.at.strftime("%Y-%m-%d %H:%M")} for s in steps],
        "may_review": review.may_review(actor),
        "review_options": [(k, gettext(STATE_NAMES[k][0])) for k in review.SETTABLE],
        "when": (detail.received_at or "")[:16].replace("T", " "),
        "others": [h for h in detail.history if h.instance_id != detail.instance_id],
        "missing": detail.attachments_expected - detail.attachments_present,
        "errors": {}, "typed": {"state": "", "comment": ""},
    }


@router.get("/submissions/{instance_id}")
def submission_page(instance_id: str, request: Request, actor: WebActorDep, session: SessionDep,
                    hooks: HooksDep) -> Response:
    """One submission: answers labelled in the reader's language, photos, map, edit history, review."""
    context = _detail_context(request, session, actor, hooks, instance_id)
    context["done"] = request.query_params.get("done")
    return render(request, "sync/submission.html", context)


@router.post("/submissions/{instance_id}/review", openapi_extra=takes(FORM_URLENCODED, MULTIPART))
def review_submission(instance_id: str, request: Request, actor: WebActorDep, session: SessionDep, hooks: HooksDep,
                      state: str = Form(""), comment: str = Form("")) -> Response:
    """Change the review state with an optional comment, or comment alone (``sync.review``, audited)."""
    try:
        if state:
            step = review.set_state(session, actor=actor, hooks=hooks, instance_id=instance_id, state=state,
                                    comment=comment)
        else:
            step = review.add_comment(session, actor=actor, hooks=hooks, instance_id=instance_id, comment=comment)
    except DomainError as exc:
        if exc.status_code == 404 or exc.code == "submission.case_data":
            raise
        session.rollback()
        context = _detail_context(request, session, actor, hooks, instance_id)
        context.update(errors={k: _message(exc) for k in field_errors(exc, "comment")},
                       typed={"state": state, "comment": comment}, done=None)
        return render(request, "sync/submission.html", context, status_code=exc.status_code)
    return redirect(f"/submissions/{step.instance_id}?done=review#review")
