"""`asmfield webhooks` commands: register endpoints, pause/resume, look at deliveries, replay, and
run the delivery worker (``deliver``; ``--once`` sends what is due and exits, for cron).

``--json`` prints the same ``webhooks.schemas`` models as the API.
"""

from __future__ import annotations

import json
import signal
from typing import Annotated

import typer
from pydantic import BaseModel

from app.cliutil import fail, load_settings, operator_label, service_session
from app.db import make_engine
from webhooks import delivery, endpoints
from webhooks.schemas import EndpointCreated, EndpointPublic
from webhooks.settings import WebhookSettings

cli = typer.Typer(help="Signed webhooks: endpoints, deliveries, replay, the delivery worker.", no_args_is_help=True)
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _dump(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json"))


def _line(e: EndpointPublic) -> str:
    state = "active" if e.active else f"paused ({e.paused_reason})"
    form = f" form={e.form}" if e.form else ""
    return f"{e.id}\t{state}\t{e.url}\t{','.join(e.events)}{form}\tpending={e.pending}"


@cli.command()
def add(
    url: Annotated[str, typer.Argument(help="http:// or https:// URL that receives the POSTs.")],
    event: Annotated[list[str], typer.Option("--event", "-e", help="An event to send (repeat for several).")],
    form: Annotated[str | None, typer.Option("--form", help="Only submission events of this form (xml id).")] = None,
    description: Annotated[str | None, typer.Option("--description", help="A note for admins.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Register an endpoint and print its signing secret (shown only this once)."""
    with service_session() as (settings, session):
        made = endpoints.register(session, url=url, events=event, form=form, description=description,
                                  server_secret=settings.secret, allow_private=WebhookSettings().allow_private,
                                  label=operator_label())
        session.flush()
        created = EndpointCreated(**EndpointPublic.of(made.endpoint).model_dump(), secret=made.secret)
    if as_json:
        typer.echo(_dump(created))
        return
    typer.echo(f"endpoint {created.id}: {created.url} ({', '.join(created.events)})")
    typer.echo(f"secret (shown only now; give it to the receiver): {created.secret}")


@cli.command("list")
def list_(as_json: JsonOption = False) -> None:
    """List endpoints: state (paused after failures?), events, pending deliveries."""
    with service_session() as (_, session):
        listing = endpoints.listing(session)
    if as_json:
        typer.echo(_dump(listing))
        return
    for e in listing.endpoints:
        typer.echo(_line(e))
    if listing.attention:
        typer.echo("attention: an endpoint was paused after repeated failures; see `asmfield webhooks deliveries`")


def _set_active(endpoint_id: int, active: bool, as_json: bool) -> None:
    with service_session() as (_, session):
        endpoints.update(session, endpoint_id, allow_private=True, active=active, label=operator_label())
        result = endpoints.public(session, endpoint_id)
    typer.echo(_dump(result) if as_json else _line(result))


@cli.command()
def pause(endpoint_id: Annotated[int, typer.Argument(help="Endpoint id.")], as_json: JsonOption = False) -> None:
    """Stop sending to an endpoint (its events keep queueing)."""
    _set_active(endpoint_id, False, as_json)


@cli.command()
def resume(endpoint_id: Annotated[int, typer.Argument(help="Endpoint id.")], as_json: JsonOption = False) -> None:
    """Send to an endpoint again: what waited goes at once."""
    _set_active(endpoint_id, True, as_json)


@cli.command()
def remove(endpoint_id: Annotated[int, typer.Argument(help="Endpoint id.")]) -> None:
    """Delete an endpoint with its deliveries."""
    with service_session() as (_, session):
        endpoints.delete(session, endpoint_id, label=operator_label())
    typer.echo(f"endpoint {endpoint_id} removed")


@cli.command()
def deliveries(
    endpoint: Annotated[int | None, typer.Option("--endpoint", help="Only this endpoint's deliveries.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="pending, delivered or failed.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The newest deliveries with their state, attempts, last status and error."""
    if state not in (None, "pending", "delivered", "failed"):
        fail("--state must be pending, delivered or failed")
    with service_session() as (_, session):
        listing = endpoints.delivery_list(session, endpoint_id=endpoint, state=state, limit=limit)
    if as_json:
        typer.echo(_dump(listing))
        return
    for d in listing.deliveries:
        last = f"last={d.last_status or '-'} {d.last_error or ''}".rstrip()
        typer.echo(f"{d.id}\tendpoint={d.endpoint_id}\t{d.event}\t{d.state}\tattempts={d.attempts}\t{last}")


@cli.command()
def replay(delivery_id: Annotated[int, typer.Argument(help="Delivery id.")], as_json: JsonOption = False) -> None:
    """Send a delivered or failed delivery again (same body and event id)."""
    with service_session() as (_, session):
        copy = endpoints.replay(session, delivery_id, label=operator_label())
        session.flush()
        result = endpoints.delivery_detail(session, copy.id or 0)
    typer.echo(_dump(result) if as_json else f"delivery {delivery_id} queued again as {result.id}")


@cli.command()
def deliver(
    once: Annotated[bool, typer.Option("--once", help="Send what is due now, then exit.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the delivery worker (until Ctrl-C), or one pass with --once. Safe next to running servers."""
    settings = load_settings()
    try:
        secret = settings.secret
    except RuntimeError as exc:
        fail(str(exc))
    engine = make_engine(settings)
    sender = delivery.Sender(engine, secret, WebhookSettings())
    try:
        if once:
            counts = sender.run_once(limit=10_000)
            typer.echo(json.dumps(counts) if as_json else ", ".join(f"{k}: {v}" for k, v in counts.items()))
            return
        stop_signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)  # before the thread starts: it inherits the mask
        worker = delivery.Worker(sender)
        worker.start()
        typer.echo("delivering webhooks; Ctrl-C to stop")
        try:
            signal.sigwait(stop_signals)
        finally:
            worker.stop()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stop_signals)
    finally:
        sender.close()
        engine.dispose()
