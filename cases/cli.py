"""`asmfield cases` commands: retention purge, the review queue and the KPI from the server's shell."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer

cli = typer.Typer(help="Child-labour cases: purge, review, KPI.", no_args_is_help=True)


@cli.command()
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list the cases that would be erased.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Erase identifying fields of cases closed longer than ASMFIELD_CASE_RETENTION_DAYS (counts survive)."""
    from app.blobs import FilesystemBlobStore
    from app.cli import service_session
    from cases.service import purge_identities

    with service_session() as (settings, session):
        summary = purge_identities(session, settings=settings, blobs=FilesystemBlobStore(settings.media_path),
                                   dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps(summary))
        return
    verb = "would erase" if dry_run else "erased"
    typer.echo(f"{verb} identifying fields of {summary['cases']} case(s) closed before {summary['cutoff']}: "
               f"{summary['submissions']} submission(s), {summary['attachments']} attachment(s), "
               f"{summary['files']} file(s)")


@cli.command()
def review() -> None:
    """List case-form submissions waiting for a coordinator's review (no identifying fields)."""
    from sqlmodel import select

    from app.cli import service_session
    from forms.models import CASE_FORM_KINDS, Form
    from sync.models import Submission

    with service_session() as (_, session):
        rows = session.exec(select(Submission, Form).join(Form, Form.id == Submission.form_id).where(
            Submission.review_state == "needs_review", Form.kind.in_(CASE_FORM_KINDS))).all()
        for sub, form in rows:
            typer.echo(f"{sub.instance_id}  {form.xml_form_id}  {sub.received_at:%Y-%m-%d}  {sub.review_reason}")
        typer.echo(f"{len(rows)} submission(s) to review")


@cli.command()
def kpi(
    date_from: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD).")],
    date_to: Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD).")],
) -> None:
    """Print the child-labour KPI (small counts suppressed as "<5")."""
    from app.auth import Actor
    from app.cli import fail, service_session
    from app.models import User
    from cases.kpi import child_labour_kpi

    try:
        start, end = date.fromisoformat(date_from), date.fromisoformat(date_to)
    except ValueError:
        fail("--from and --to must be dates like 2026-01-31")
        return
    with service_session() as (_, session):
        from sqlmodel import select

        admin = session.exec(select(User).where(User.role == "admin", User.active == True)).first()  # noqa: E712
        if admin is None:
            fail("no active administrator account; create one first")
        typer.echo(json.dumps(child_labour_kpi(session, actor=Actor(user=admin, via="cli"), date_from=start,
                                               date_to=end), indent=2))
