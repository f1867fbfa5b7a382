"""The refusals of the webhooks capability, each with its stable code (``app.main`` renders them)."""

from __future__ import annotations

from app.errors import Conflict, Invalid, NotFound


class EndpointNotFound(NotFound):
    code = "webhook.not_found"


class DeliveryNotFound(NotFound):
    code = "webhook.delivery_not_found"


class BadUrl(Invalid):
    """Not an http(s) URL with a host, or a private address when ASMFIELD_WEBHOOK_ALLOW_PRIVATE is false."""

    code = "webhook.bad_url"


class BadEvent(Invalid):
    code = "webhook.bad_event"


class UnknownForm(Invalid):
    code = "webhook.unknown_form"


class NotReplayable(Conflict):
    code = "webhook.not_replayable"
