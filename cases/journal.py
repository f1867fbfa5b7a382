"""Who acted: the immutable case events and the audit rows of the cases capability both name the
real actor (user, role, organisation, device, how they authenticated), or the system."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app import audit
from app.identity import Actor
from cases import lifecycle
from cases.models import CaseEvent, ChildCase


def actor_columns(actor: Actor | None, *, submitter_id: int | None = None) -> dict[str, Any]:
    """The columns of a case event naming who acted: the user, their role and organisation, the
    device the action came through (a device token acts for its user, so the event says which
    credential it was) and how they authenticated. ``actor`` None is the system, or, with
    ``submitter_id``, the stored submitter of a submission processed without a caller."""
    if actor is None:
        return {"actor_user_id": submitter_id, "actor_role": lifecycle.SYSTEM if submitter_id is None else "unknown",
                "actor_org_id": None, "actor_device_id": None, "actor_device": None, "actor_auth": None}
    return {"actor_user_id": actor.user.id, "actor_role": actor.role, "actor_org_id": actor.organisation_id,
            "actor_device_id": actor.device.id if actor.device else None,
            "actor_device": actor.device.name if actor.device else None, "actor_auth": actor.via}


def new_event(case: ChildCase, *, actor: Actor | None, action: str, from_status: str | None, to_status: str,
              submitter_id: int | None = None, **fields: Any) -> CaseEvent:
    """An immutable case event naming the real actor (see ``actor_columns``)."""
    return CaseEvent(case_id=case.id, action=action, from_status=from_status, to_status=to_status,
                     **actor_columns(actor, submitter_id=submitter_id), **fields)


def record(session: Session, action: str, *, actor: Actor | None, **fields: Any) -> None:
    """A case audit row: the audit log names the user and device; this adds how they authenticated."""
    audit.record(session, action, actor=actor, auth=actor.via if actor else None, **fields)
