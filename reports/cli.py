"""``asmfield export FORM --format csv|xlsx|geojson|gpkg|media --out PATH [filters, options]`` (issue 15).

The operator's export from the server's shell, with a progress bar on stderr. It runs as an
administrator would (every site-visit submission; case forms are refused, as for an administrator:
children's data leaves only through the cases capability's rules) and is audited as ``cli:<login>``.
The same spec, rules and writers as the API (``reports.exports``); the file is written next to
``PATH`` and renamed into place when complete.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from typer.core import TyperGroup

from app.cliutil import current_blobs, current_hooks, load_settings, operator_label, service_session
from app.identity import Actor, Role
from app.models import User
from reports.exports.jobs import write_export
from reports.exports.rows import count, export_plan
from reports.exports.spec import parse_spec


class _Command(TyperGroup):
    """A typer group without sub-commands that runs as one command, so the capability's group
    (``Capability.cli``, added as ``asmfield export``) reads ``asmfield export FORM --out PATH``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return click.Command.parse_args(self, ctx, args)

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        return click.Command.collect_usage_pieces(self, ctx)

    def invoke(self, ctx: click.Context) -> Any:
        return click.Command.invoke(self, ctx)


cli = typer.Typer(cls=_Command, help="Export a form's submissions to a file (CSV zip, XLSX, GeoJSON, GeoPackage, "
                  "media zip).", context_settings={"allow_interspersed_args": True})

def cli_actor() -> Actor:
    """The server's operator, as an administrator (never stored; audited as ``cli:<login>``)."""
    return Actor(user=User(username=operator_label(), role=Role.admin, organisation_id=0, password_hash=""), via="cli")


@cli.callback(invoke_without_command=True)
def export(
    ctx: typer.Context,
    form: Annotated[str, typer.Argument(help="The form id (xml_form_id), e.g. asm_site_visit.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The file to write (replaced when complete).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv (a zip: one CSV per table), xlsx, geojson, gpkg "
                                                            "or media (a zip of the photos).")] = "csv",
    since: Annotated[str | None, typer.Option(help="Received on or after (2026-03-01 or an ISO date-time).")] = None,
    until: Annotated[str | None, typer.Option(help="Received on or before (a bare date covers the day).")] = None,
    review_state: Annotated[str | None, typer.Option(help="received, needs_review, approved or rejected.")] = None,
    site: Annotated[str | None, typer.Option(help="Only submissions mapped onto this site code.")] = None,
    province: Annotated[str | None, typer.Option(help="Only submissions mapped onto a site in this province.")] = None,
    min_version: Annotated[str | None, typer.Option(help="Oldest form version to include.")] = None,
    max_version: Annotated[str | None, typer.Option(help="Newest form version to include.")] = None,
    headers: Annotated[str, typer.Option(help="Column headers: names or labels.")] = "names",
    choices: Annotated[str, typer.Option(help="Select answers: values or labels.")] = "values",
    language: Annotated[str, typer.Option(help="Language of labels: fr or en.")] = "fr",
    split_multiple: Annotated[bool, typer.Option("--split-multiple", help="A 1/0 column per choice of "
                                                                          "select_multiple questions.")] = False,
    include_edits: Annotated[bool, typer.Option("--include-edits", help="Also the superseded versions of edited "
                                                                        "records (_superseded_by).")] = False,
    geometry_field: Annotated[str | None, typer.Option(help="GeoJSON/GeoPackage: the geo question to draw "
                                                            "(default: the first).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (file, rows, bytes).")] = False,
) -> None:
    """Export a form's submissions to a file, with a progress bar (stderr)."""
    params = {"form": form, "format": fmt, "since": since, "until": until, "review_state": review_state, "site": site,
              "province": province, "min_version": min_version, "max_version": max_version, "headers": headers,
              "choices": choices, "language": language, "split_multiple": "true" if split_multiple else "",
              "include_edits": "true" if include_edits else "", "geometry_field": geometry_field}
    settings = load_settings()
    hooks = current_hooks(ctx)
    out = out.expanduser().resolve()
    part = out.with_name(out.name + ".part")
    with service_session(settings) as (_, session):  # checked and audited (export.create) in its own transaction
        plan = export_plan(session, cli_actor(), hooks, parse_spec({k: v for k, v in params.items() if v}))
    blobs = current_blobs(ctx, settings)
    console = Console(stderr=True)
    try:
        with service_session(settings) as (_, session), Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=not console.is_terminal) as bar:
            rows = count(session, plan)
            task = bar.add_task(f"{form} → {out.name}", total=rows)
            out.parent.mkdir(parents=True, exist_ok=True)
            with part.open("wb") as stream:
                write_export(session, plan, stream, blobs=blobs, progress=lambda n: bar.update(task, completed=n))
        part.replace(out)
    finally:
        part.unlink(missing_ok=True)
    result = {"file": str(out), "format": fmt, "rows": rows, "bytes": out.stat().st_size}
    typer.echo(json.dumps(result) if as_json else f"Wrote {rows} submission(s) of {form} to {out} "
               f"({result['bytes']:,} bytes)")
