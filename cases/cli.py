"""`asmfield cases` commands: retention purge, the review queue and the KPI from the server's shell.

``--json`` prints the same ``cases.schemas`` models as the API.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from pydantic import BaseModel

from app.cliutil import current_blobs, service_session
from app.timeutil import utcnow
from cases.kpi import child_labour_kpi, month_window
from cases.retention import purge_identities
from cases.review import review_queue
from cases.schemas import ChildLabourKpiPublic, ReviewQueue

cli = typer.Typer(help="Child-labour cases: purge, review, KPI.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _dump(model: BaseModel, *, indent: int | None = None) -> str:
    return json.dumps(model.model_dump(mode="json", by_alias=True), indent=indent)


@cli.command()
def purge(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the cases that would be erased.")] = False,
    photos_only: Annotated[bool, typer.Option("--photos-only", help="Erase only the photos (fields and files).")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase identifying fields of cases closed longer than ASMFIELD_CASE_RETENTION_DAYS (counts survive).

    Files are deleted only once the database changes are committed; running it again is harmless.
    """
    with service_session() as (settings, session):
        summary = purge_identities(session, settings=settings, blobs=current_blobs(ctx, settings),
                                   dry_run=dry_run, photos_only=photos_only)
    if as_json:
        typer.echo(_dump(summary))
        return
    verb = "would erase" if dry_run else "erased"
    what = "photos" if photos_only else "identifying fields"
    typer.echo(f"{verb} {what} of {summary.cases} case(s) closed before {summary.cutoff}: "
               f"{summary.submissions} submission(s), {summary.attachments} attachment(s), "
               f"{summary.files} file(s)")


@cli.command()
def review(as_json: JsonOption = False) -> None:
    """List case-form submissions waiting for a coordinator's review (no identifying fields)."""
    with service_session() as (_, session):
        queue = ReviewQueue(submissions=review_queue(session, actor=None))
    if as_json:
        typer.echo(_dump(queue))
        return
    for item in queue.submissions:
        typer.echo(f"{item.instance_id}  {item.form}  {(item.received_at or '')[:10]}  {item.reason}")
    typer.echo(f"{len(queue.submissions)} submission(s) to review")


@cli.command()
def kpi(
    date_from: Annotated[str, typer.Option("--from", help="First month (YYYY-MM, or its first day).")],
    date_to: Annotated[str, typer.Option("--to", help="Last month (YYYY-MM, or its last day).")],
    as_json: JsonOption = False,
) -> None:
    """Print the child-labour KPI for whole calendar months (small counts suppressed, as in the API);
    always one JSON object (``--json`` is accepted like in the other commands).

    Audited as the server's shell, not as any person's account.
    """
    with service_session() as (_, session):
        start, end = month_window(date_from, date_to, today=utcnow().date())
        figures = ChildLabourKpiPublic.model_validate(child_labour_kpi(session, actor=None, date_from=start,
                                                                        date_to=end))
    typer.echo(_dump(figures, indent=2))
