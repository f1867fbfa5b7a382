"""`asmfield cases` commands: retention purge, the review queue and the KPI from the server's shell."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.cliutil import current_blobs, service_session
from app.timeutil import utcnow
from cases.kpi import child_labour_kpi, month_window
from cases.service import purge_identities
from forms.models import CASE_FORM_KINDS, Form
from sync.models import Submission

cli = typer.Typer(help="Child-labour cases: purge, review, KPI.", no_args_is_help=True)


@cli.command()
def purge(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the cases that would be erased.")] = False,
    photos_only: Annotated[bool, typer.Option("--photos-only", help="Erase only the photos (fields and files).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Erase identifying fields of cases closed longer than ASMFIELD_CASE_RETENTION_DAYS (counts survive).

    Files are deleted only once the database changes are committed; running it again is harmless.
    """
    with service_session() as (settings, session):
        summary = purge_identities(session, settings=settings, blobs=current_blobs(ctx, settings),
                                   dry_run=dry_run, photos_only=photos_only)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    verb = "would erase" if dry_run else "erased"
    what = "photos" if photos_only else "identifying fields"
    typer.echo(f"{verb} {what} of {summary['cases']} case(s) closed before {summary['cutoff']}: "
               f"{summary['submissions']} submission(s), {summary['attachments']} attachment(s), "
               f"{summary['files']} file(s)")


@cli.command()
def review() -> None:
    """List case-form submissions waiting for a coordinator's review (no identifying fields)."""
    from sqlmodel import select

    with service_session() as (_, session):
        rows = session.exec(select(Submission, Form).join(Form, Form.id == Submission.form_id).where(
            Submission.review_state == "needs_review", Submission.current == True,  # noqa: E712
            Form.kind.in_(CASE_FORM_KINDS))).all()
        for sub, form in rows:
            typer.echo(f"{sub.instance_id}  {form.xml_form_id}  {sub.received_at:%Y-%m-%d}  {sub.review_reason}")
        typer.echo(f"{len(rows)} submission(s) to review")


@cli.command()
def kpi(
    date_from: Annotated[str, typer.Option("--from", help="First month (YYYY-MM, or its first day).")],
    date_to: Annotated[str, typer.Option("--to", help="Last month (YYYY-MM, or its last day).")],
) -> None:
    """Print the child-labour KPI for whole calendar months (small counts suppressed, as in the API).

    Audited as the server's shell, not as any person's account.
    """
    with service_session() as (_, session):
        start, end = month_window(date_from, date_to, today=utcnow().date())
        typer.echo(json.dumps(child_labour_kpi(session, actor=None, date_from=start, date_to=end), indent=2))
