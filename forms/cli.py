"""`asmfield forms` commands: a thin layer over ``forms.service``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cliutil import JsonOpt, current_blobs, current_hooks, emit, fail, service_session
from forms import queries, service
from forms.schemas import FormAdded, FormPublic, FormStateChanged
from forms.xlsform import XLSFormError, markdown_to_xlsx

cli = typer.Typer(help="Forms: upload XLSForms/XForms, versions, media.", no_args_is_help=True)


@cli.command("add")
def add(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="XLSForm (.xlsx or markdown .md) or XForm (.xml).", exists=True,
                                         dir_okay=False, readable=True)],
    media: Annotated[list[Path] | None, typer.Option("--media", help="A media file the form references (repeatable).",
                                                     exists=True, dir_okay=False, readable=True)] = None,
    kind: Annotated[str | None, typer.Option(help="site_visit, case_intake, case_followup or general.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Upload a form: create it, or publish a new version of it."""
    with service_session() as (settings, session):
        result = service.add_form(
            session, blobs=current_blobs(ctx, settings), settings=settings, actor=None,
            content=path.read_bytes(), filename=path.name, kind=kind,
            media=[service.IncomingMedia(filename=m.name, path=m) for m in media or []],
            generated=current_hooks(ctx).per_caller_names(), generators=current_hooks(ctx).generated_media,
        )
        verb = "published" if result.created else "already published (unchanged)"
        lines = [f"Form {result.form.xml_form_id!r} version {result.version.version!r} {verb} ({result.form.kind})"]
        lines += [f"Warning: {w}" for w in result.warnings]
        missing = sorted(set(result.version.media_names) - {m.filename for m in queries.media_for_version(
            session, result.version)})
        if missing:
            lines.append(f"Media still missing: {', '.join(missing)}")
        added = FormAdded(xml_form_id=result.form.xml_form_id, version=result.version.version, kind=result.form.kind,
                          created=result.created, md5=result.version.md5, warnings=result.warnings,
                          media=[m.filename for m in result.media], missing_media=missing)
        emit(as_json, added.model_dump(mode="json"), "\n".join(lines))


@cli.command("list")
def list_forms(as_json: JsonOpt = False) -> None:
    """List forms with their state, kind and published version."""
    with service_session() as (_, session):
        rows = [FormPublic.from_form(f, queries.published_version(session, f)) for f in queries.list_forms(session)]
        if as_json:
            typer.echo(json.dumps([r.model_dump(mode="json") for r in rows]))
            return
        for r in rows:
            typer.echo(f"{r.xml_form_id}\t{r.version}\t{r.state}\t{r.kind}\t{r.title}")


def _set_state(xml_form_id: str, state: str, as_json: bool) -> None:
    with service_session() as (_, session):
        form = service.set_state(session, form=service.require_form(session, xml_form_id), state=state, actor=None)
        changed = FormStateChanged(xml_form_id=form.xml_form_id, state=form.state)
        emit(as_json, changed.model_dump(mode="json"), f"Form {form.xml_form_id!r} is {form.state}")


@cli.command("close")
def close(xml_form_id: Annotated[str, typer.Argument(help="Form id.")], as_json: JsonOpt = False) -> None:
    """Close a form: tablets no longer get it and its submissions are refused."""
    _set_state(xml_form_id, "closed", as_json)


@cli.command("open")
def reopen(xml_form_id: Annotated[str, typer.Argument(help="Form id.")], as_json: JsonOpt = False) -> None:
    """Reopen a closed form."""
    _set_state(xml_form_id, "open", as_json)


@cli.command("xlsx")
def to_xlsx(
    source: Annotated[Path, typer.Argument(help="A markdown-table XLSForm (.md).", exists=True, dir_okay=False)],
    target: Annotated[Path, typer.Argument(help="The .xlsx file to write.")],
) -> None:
    """Write a markdown-table XLSForm (e.g. a bundled form) as an .xlsx workbook to edit in a spreadsheet."""
    try:
        target.write_bytes(markdown_to_xlsx(source.read_text(encoding="utf-8")))
    except XLSFormError as exc:
        fail(exc.message)
    typer.echo(f"Wrote {target}")
