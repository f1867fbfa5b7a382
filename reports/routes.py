"""Export routes (thin, over ``reports.exports``): the stable CSV URL of a form and its CSV zip and
XLSX, all streamed.

The export is planned and audited in the request's transaction (committed before the first
byte); the rows are then read from a session of their own while the response streams, because
the request's session is closed once the handler returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.engine import Engine
from sqlmodel import Session

from app.accounts import REALM
from app.auth import api_actor, user_actor
from app.deps import HooksDep, SessionDep
from app.errors import Unauthorized
from app.identity import Actor
from reports.exports import FORMATS, tabular
from reports.exports.rows import ExportPlan, export_plan
from reports.exports.spec import PARAMS, parse_spec
from reports.exports.streaming import piped

router = APIRouter(tags=["reports"])

_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
#: The query parameters every export route takes (``reports.exports.spec.parse_spec``).
FILTERS_DOC = (f"Query parameters (all optional): {', '.join(p for p in PARAMS if p not in ('form', 'format'))}. "
               "See README, “Analyse in R / Python / QGIS”.")


def export_actor(request: Request, session: SessionDep) -> Actor:
    """A person, by Bearer API token, Basic or the web session. A refusal for missing credentials
    also offers Basic, so Excel and Power BI “From Web” ask for a user name and password."""
    try:
        actor = api_actor(request, session)
    except Unauthorized as exc:
        exc.headers = [*exc.headers, ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"')]
        raise
    return user_actor(actor)


ExportActor = Annotated[Actor, Depends(export_actor)]


def _plan(request: Request, session: Session, actor: Actor, hooks: Any, xml_form_id: str, fmt: str) -> ExportPlan:
    spec = parse_spec(dict(request.query_params), xml_form_id=xml_form_id, format=fmt)
    return export_plan(session, actor, hooks, spec)


def _attachment(plan: ExportPlan, extension: str) -> dict[str, str]:
    name = _FILENAME_UNSAFE.sub("_", plan.xml_form_id) or "export"
    return {"Content-Disposition": f'attachment; filename="{name}.{extension}"', "Cache-Control": "no-store"}


def _rows_of(engine: Engine, make: Callable[[Session], Iterator[bytes]]) -> Iterator[bytes]:
    with Session(engine) as session:
        yield from make(session)


def _file_of(engine: Engine, plan: ExportPlan, name: str) -> Iterator[bytes]:
    def write(out: BinaryIO) -> None:
        with Session(engine) as session:
            FORMATS[name](session, plan, out, None)

    return piped(write)


@router.get("/api/v1/forms/{xml_form_id}/export.csv", response_class=StreamingResponse, description=FILTERS_DOC,
            responses={200: {"content": {"text/csv": {}}, "description": "The main table as one CSV (UTF-8 with BOM)"}})
def export_csv(xml_form_id: str, request: Request, session: SessionDep, hooks: HooksDep,
               actor: ExportActor) -> StreamingResponse:
    """The stable CSV URL of a form: its main table (one row per submission, no repeats), streamed.
    For Excel / Power BI “From Web” (Basic), R and pandas (a Bearer API token or Basic). """
    plan = _plan(request, session, actor, hooks, xml_form_id, "csv")
    engine = request.app.state.engine
    return StreamingResponse(_rows_of(engine, lambda s: tabular.stream_csv(s, plan)),
                             media_type="text/csv; charset=utf-8", headers=_attachment(plan, "csv"))



@router.get("/api/v1/forms/{xml_form_id}/export.zip", response_class=StreamingResponse, description=FILTERS_DOC,
            responses={200: {"content": {"application/zip": {}},
                             "description": "A zip: the main CSV and one CSV per repeat group"}})
def export_zip(xml_form_id: str, request: Request, session: SessionDep, hooks: HooksDep,
               actor: ExportActor) -> StreamingResponse:
    """The CSV zip of a form: the main table and one CSV per repeat group, joined by
    ``_uuid``/``_parent_uuid`` (as ODK Central's KEY/PARENT_KEY), streamed."""
    plan = _plan(request, session, actor, hooks, xml_form_id, "csv")
    return StreamingResponse(_file_of(request.app.state.engine, plan, "csv"), media_type="application/zip",
                             headers=_attachment(plan, "zip"))



@router.get("/api/v1/forms/{xml_form_id}/export.xlsx", response_class=StreamingResponse, description=FILTERS_DOC,
            responses={200: {"content": {FORMATS["xlsx"].media_type: {}},
                             "description": "A workbook: one sheet per table"}})
def export_xlsx(xml_form_id: str, request: Request, session: SessionDep, hooks: HooksDep,
                actor: ExportActor) -> StreamingResponse:
    """The XLSX workbook of a form: one sheet for the main table and one per repeat group, streamed.
    Refused (422 ``export.too_large``) past Excel's 1,048,575 rows."""
    plan = _plan(request, session, actor, hooks, xml_form_id, "xlsx")
    tabular.check_xlsx(session, plan)
    return StreamingResponse(_file_of(request.app.state.engine, plan, "xlsx"), media_type=FORMATS["xlsx"].media_type,
                             headers=_attachment(plan, "xlsx"))



def install(app: FastAPI) -> None:
    app.include_router(router)
