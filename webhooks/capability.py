"""What the webhooks capability brings: ``/api/v1/webhooks`` (admins), ``asmfield webhooks``, the
outbox rows of submission events (``subscriptions``) and of announced site and case events (session
listeners, ``outbox.listen``), the delivery worker started with the app, and the admins' page ``/webhooks``."""

from __future__ import annotations

from app.capability import Capability
from app.events import SubmissionStored
from sync.review import SubmissionReviewed
from webhooks import cli, outbox, routes, web

# Process-wide and idempotent: they act only on sessions where app.events.announce queued something,
# so the announced events of the server and of every CLI command reach the outbox.
outbox.listen()

capability = Capability(
    name="webhooks",
    install=routes.install, install_web=web.install, nav=web.NAV,
    cli=cli.cli,
    cli_name="webhooks",
    subscriptions=((SubmissionStored, outbox.on_submission_stored),
                   (SubmissionReviewed, outbox.on_submission_reviewed)),
)
