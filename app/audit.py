"""The audit helper every capability uses: ``record(session, action, actor=..., obj=...)``.

Entries are appended in the caller's transaction, so an audited change and its audit entry
commit (or roll back) together. Failed logins are recorded in their own transaction by the
auth layer, because the request that carries them fails.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from app.identity import Actor
from app.models import AuditLog
from app.rawsql import FastInsert
from app.timeutil import utcnow


def record(
    session: Session,
    action: str,
    *,
    actor: Actor | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    client_addr: str | None = None,
    label: str | None = None,
    **details: Any,
) -> AuditLog:
    """Append one audit entry, e.g. ``record(s, "case.read_identity", actor=a, object_type="case", object_id=code)``.

    :param action: dotted verb, ``<object>.<what happened>`` (``user.create``, ``auth.login_failed``).
    :param actor: who did it (user and device); ``None`` for the system or an anonymous client.
    :param label: a name for the actor when there is no user (e.g. the username tried at a failed login).
    :param details: small JSON-able facts; never passwords, tokens or a child's identifying fields.
    """
    entry = AuditLog(**entry_values(action, actor=actor, object_type=object_type, object_id=object_id,
                                    client_addr=client_addr, label=label, details=details))
    session.add(entry)
    return entry


def entry_values(action: str, *, actor: Actor | None, object_type: str | None, object_id: str | int | None,
                 details: dict[str, Any], client_addr: str | None = None, label: str | None = None) -> dict[str, Any]:
    """The columns of one audit entry (``record`` builds the ORM object from them, ``append`` and batch
    inserts write them as they are)."""
    return {
        "at": utcnow(), "action": action, "actor_user_id": actor.user.id if actor else None,
        "actor_device_id": actor.device.id if actor and actor.device else None,
        "actor_label": label or (actor.label if actor else None), "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "client_addr": client_addr or (actor.client_addr if actor else None), "details": details, "count": 1,
    }


def append(
    session: Session,
    action: str,
    *,
    actor: Actor | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    **details: Any,
) -> None:
    """``record`` written at once as one driver-level insert (``app.rawsql``), without an ORM object (issue 13:
    the entry of every stored upload). Pending ORM changes are flushed first, so entries keep their order."""
    session.flush()
    _INSERT.insert_one(session, entry_values(action, actor=actor, object_type=object_type, object_id=object_id,
                                             details=details))


_INSERT = FastInsert(AuditLog.__table__)  # type: ignore[attr-defined]
