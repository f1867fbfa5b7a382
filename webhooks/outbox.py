"""The outbox: a ``WebhookDelivery`` row per event and matching endpoint, written in the event's
own transaction, so an event that rolls back is never sent and a committed one survives a restart.

Where events come from:

* ``SubmissionStored`` (sync; an edit when the submission has a ``deprecated_id``) and
  ``SubmissionReviewed`` through the capability's ``subscriptions``;
* ``site.stage_changed`` and ``case.transition`` through ``app.events.announce``: geodata and cases
  queue a plain dict in ``session.info``; the session listener installed here (``listen``) turns
  the queue into rows in the flush that follows, inside the same transaction (a rollback of the
  transaction, or of a savepoint before that flush, drops the queue).

Hot path: a submission costs one read of the ``endpoints_version`` counter per transaction when
no endpoint is registered (the endpoint filters are cached per process and per engine, and
rebuilt only when that counter, bumped by every endpoint change, moves).

Payloads never carry identifying fields of children: case events name the pseudonymous case code,
the transition and the organisation; submission events of case forms carry ids only, and only
site-visit forms carry their answers (``data``).
"""

from __future__ import annotations

import json
import threading
import uuid
import weakref
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from app.events import ANNOUNCED, SubmissionStored
from app.timeutil import isoformat, utcnow
from forms.models import FormKind
from sync.review import SubmissionReviewed
from webhooks import queries
from webhooks.models import WebhookDelivery

SUBMISSION_EVENTS = ("submission.created", "submission.edited", "submission.reviewed")
EVENTS = (*SUBMISSION_EVENTS, "site.stage_changed", "case.transition")

#: session.info keys: the endpoints version read in this transaction; "rows were written" (wake the worker).
_VERSION_MEMO = "webhooks.endpoints_version"
_CHANGED_IN = "webhooks.endpoints_changed_in"
WROTE = "webhooks.wrote"


# -- which endpoints want an event ----------------------------------------------------------


class _Filters:
    """Per process and per engine: the endpoints' (id, events, form), for one endpoints version."""

    def __init__(self) -> None:
        self._by_engine: weakref.WeakKeyDictionary[Engine, tuple[int, list[tuple[int, list[str], str | None]]]] = (
            weakref.WeakKeyDictionary())
        self._lock = threading.Lock()

    def of(self, session: Session) -> list[tuple[int, list[str], str | None]]:
        changed_in = session.info.get(_CHANGED_IN)
        if changed_in is not None and changed_in is session.get_transaction():
            # this transaction changed endpoints: what it sees is not committed, so it is not cached
            return queries.endpoint_filters(session)
        version = endpoints_version(session)
        engine = engine_of(session)
        cached = self._by_engine.get(engine)
        if cached is not None and cached[0] == version:
            return cached[1]
        filters = queries.endpoint_filters(session)
        with self._lock:
            self._by_engine[engine] = (version, filters)
        return filters


FILTERS = _Filters()


def engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind.engine if isinstance(bind, Connection) else bind  # type: ignore[return-value]


def endpoints_version(session: Session) -> int:
    """The endpoints counter, read once per transaction (a sync batch stores hundreds of submissions)."""
    transaction = session.get_transaction()
    memo = session.info.get(_VERSION_MEMO)
    if memo is not None and transaction is not None and memo[0] is transaction:
        return memo[1]
    version = queries.counter(session, queries.ENDPOINTS_VERSION)
    session.info[_VERSION_MEMO] = (transaction, version)
    return version


def endpoints_changed(session: Session) -> None:
    """Bump the counter (one statement): every process re-reads the endpoints on its next event."""
    session.info.pop(_VERSION_MEMO, None)
    session.info[_CHANGED_IN] = session.get_transaction()
    queries.bump_counter(session, queries.ENDPOINTS_VERSION)


def matching(session: Session, name: str, form: str | None = None) -> list[int]:
    """Ids of the endpoints subscribed to ``name`` (submission events: and to ``form``, if they filter)."""
    return [endpoint_id for endpoint_id, events, only in FILTERS.of(session)
            if name in events and (only is None or name not in SUBMISSION_EVENTS or only == form)]


# -- writing deliveries ---------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def body(event_id: str, name: str, occurred_at: datetime, form: str | None, data: dict[str, Any]) -> str:
    """The JSON body, as signed and sent: ``{id, event, occurred_at, form, data}``."""
    payload = {"id": event_id, "event": name, "occurred_at": isoformat(occurred_at), "form": form, "data": data}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def write(session: Session, endpoint_ids: list[int], name: str, *, form: str | None, data: dict[str, Any],
          occurred_at: datetime | None = None) -> list[WebhookDelivery]:
    """One pending delivery per endpoint, added to ``session`` (its transaction decides)."""
    now = utcnow()
    rows = []
    for endpoint_id in endpoint_ids:
        event_id = str(uuid.uuid4())
        row = WebhookDelivery(event_id=event_id, endpoint_id=endpoint_id, event=name, next_attempt_at=now,
                              body=body(event_id, name, occurred_at or now, form, data), created_at=now)
        session.add(row)
        rows.append(row)
    if rows:
        session.info[WROTE] = True
    return rows


def submission_data(session: Session, submission: Any, form: Any, version: Any) -> dict[str, Any]:
    """What a submission event says: ids, version, times, review state; site and answers for site visits only."""
    data: dict[str, Any] = {
        "instance_id": submission.instance_id,
        "root_instance_id": submission.root_instance_id,
        "deprecated_id": submission.deprecated_id,
        "version": version.version if version is not None else None,
        "submitted_at": submission.received_at,
        "review_state": submission.review_state,
    }
    if form is not None and form.kind == FormKind.site_visit:
        site = queries.site_facts(session, submission.site_id)
        data["site"] = site[0] if site else None
        data["data"] = submission.data
    return data


def on_submission_stored(event: SubmissionStored) -> None:
    """``SubmissionStored`` subscriber: ``submission.created``, or ``submission.edited`` for an edit."""
    session, form = event.session, event.form
    name = "submission.edited" if event.submission.deprecated_id else "submission.created"
    endpoint_ids = matching(session, name, form.xml_form_id)
    if endpoint_ids:
        write(session, endpoint_ids, name, form=form.xml_form_id,
              data=submission_data(session, event.submission, form, event.version))


def on_submission_reviewed(event: SubmissionReviewed) -> None:
    """``SubmissionReviewed`` subscriber: ``submission.reviewed`` with the states before and after."""
    session, submission = event.session, event.submission
    if not FILTERS.of(session):
        return
    form, version = queries.form_and_version(session, submission.form_id, submission.form_version_id)
    xml_form_id = form.xml_form_id if form is not None else None
    endpoint_ids = matching(session, "submission.reviewed", xml_form_id)
    if endpoint_ids:
        data = submission_data(session, submission, form, version)
        data["review"] = {"from": event.from_state, "to": event.to_state}
        write(session, endpoint_ids, "submission.reviewed", form=xml_form_id, data=data)


# -- announced events (app.events.announce) -------------------------------------------------


def _site_stage_data(session: Session, payload: dict[str, Any]) -> dict[str, Any] | None:
    site = queries.site_facts(session, payload.get("site_id"))
    if site is None:
        return None
    (from_stage, from_status), (to_stage, to_status) = payload["from"], payload["to"]
    return {"site": site[0], "name": site[1], "from": {"stage": from_stage, "status": from_status},
            "to": {"stage": to_stage, "status": to_status}}


def _case_data(session: Session, payload: dict[str, Any]) -> dict[str, Any] | None:
    facts = queries.case_facts(session, payload["case_id"])
    if facts is None:
        return None
    return {"case": facts[0], "action": payload.get("action"), "from": payload.get("from"),
            "to": payload.get("to"), "organisation": facts[1], "at": payload.get("at")}


_ANNOUNCED_DATA = {"site.stage_changed": _site_stage_data, "case.transition": _case_data}


def drain_announced(session: Session) -> None:
    """Turn the events announced in ``session`` into deliveries (called before each flush and commit)."""
    queue = session.info.pop(ANNOUNCED, None)
    if not queue:
        return
    for name, payload in queue:
        build = _ANNOUNCED_DATA.get(name)
        if build is None:
            continue
        endpoint_ids = matching(session, name)
        if not endpoint_ids:
            continue
        data = build(session, payload)
        if data is not None:
            write(session, endpoint_ids, name, form=None, data=data,
                  occurred_at=payload.get("at") if isinstance(payload.get("at"), datetime) else None)


def _before_flush(session: OrmSession, _context: Any, _instances: Any) -> None:
    if session.info.get(ANNOUNCED):
        drain_announced(session)  # type: ignore[arg-type]


def _before_commit(session: OrmSession) -> None:
    if session.info.get(ANNOUNCED):
        drain_announced(session)  # type: ignore[arg-type]


def _after_soft_rollback(session: OrmSession, _previous: Any) -> None:
    session.info.pop(ANNOUNCED, None)
    session.info.pop(WROTE, None)


def _after_commit(session: OrmSession) -> None:
    if session.info.pop(WROTE, False):
        wake(engine_of(session))  # type: ignore[arg-type]


def listen() -> None:
    """Install the session listeners (once per process; idempotent). They act only on sessions
    where something was announced or written, so other sessions pay one dict lookup."""
    for name, handler in (("before_flush", _before_flush), ("before_commit", _before_commit),
                          ("after_soft_rollback", _after_soft_rollback), ("after_commit", _after_commit)):
        if not event.contains(OrmSession, name, handler):
            event.listen(OrmSession, name, handler)


# -- waking the worker --------------------------------------------------------------------

_WAKE_ATTRIBUTE = "_asmfield_webhooks_wake"


def wake_event(engine: Engine) -> threading.Event:
    """The event a worker of this engine waits on; set when a transaction wrote deliveries."""
    wakeup = getattr(engine, _WAKE_ATTRIBUTE, None)
    if wakeup is None:
        wakeup = threading.Event()
        setattr(engine, _WAKE_ATTRIBUTE, wakeup)
    return wakeup


def wake(engine: Engine) -> None:
    wake_event(engine).set()
