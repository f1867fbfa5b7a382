"""Signed webhooks from the outbox, against a real HTTP receiver on 127.0.0.1: what is sent and
how it is signed, retries with backoff (an injected clock, no sleeping), pausing, 410, replay,
transactions that roll back, a restart before delivery, two workers over one database, and a worker
whose app is gone."""

from __future__ import annotations

import json
import threading
import time

from fastapi.testclient import TestClient
from sqlmodel import func, select

from app.db import make_engine, session_scope
from app.identity import Actor
from app.main import create_app
from app.models import AuditLog
from forms.models import FormVersion
from sync.ingest import receive_submission
from tests.factories import batch_item, new_instance_id, visit_data, visit_xml
from webhooks import queries, signing
from webhooks.delivery import Sender, Worker
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.settings import WebhookSettings

BATCH = "/api/v1/sync/batches"
HOOKS = "/api/v1/webhooks"


def register(client, world, url, *events, form=None) -> dict:
    response = client.post(HOOKS, json={"url": url, "events": list(events) or ["submission.created"], "form": form},
                           headers=world.admin.bearer)
    assert response.status_code == 201, response.text
    return response.json()


def submit(client, world, *items) -> list[dict]:
    response = client.post(BATCH, json={"device": "t1", "items": list(items)}, headers=world.monitor.bearer)
    assert response.status_code == 200, response.text
    return response.json()["results"]


def deliveries(engine) -> list[WebhookDelivery]:
    with session_scope(engine) as s:
        return list(s.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_new_submission_and_its_edit_are_posted_signed(client, world, visit_form, receiver, sender, clock):
    hook = register(client, world, receiver.url + "/in", "submission.created", "submission.edited", form="field_visit")
    assert hook["secret"].startswith("whsec_")
    first = new_instance_id()
    submit(client, world, batch_item(first, data=visit_data(workers=7)))
    submit(client, world, batch_item(new_instance_id(), data=visit_data(workers=8), deprecated_id=first))

    assert sender.run_once() == {"delivered": 2, "retry": 0, "failed": 0, "skipped": 0}
    created, edited = receiver.requests
    for request in (created, edited):
        assert request.path == "/in"
        assert request.headers["Content-Type"] == "application/json"
        header = request.headers[signing.HEADER]
        assert signing.verify(hook["secret"], header, request.body, now=int(clock().timestamp()))
        assert not signing.verify("whsec_wrong", header, request.body, now=int(clock().timestamp()))
        assert not signing.verify(hook["secret"], header, request.body + b" ", now=int(clock().timestamp()))
    body = created.json
    assert set(body) == {"id", "event", "occurred_at", "form", "data"}
    assert (body["event"], body["form"]) == ("submission.created", "field_visit")
    assert body["data"]["instance_id"] == first
    assert body["data"]["version"] == "1"
    assert body["data"]["review_state"] == "received"
    assert body["data"]["data"]["/field_visit/workers"] == 7
    assert edited.json["event"] == "submission.edited"
    assert edited.json["data"]["deprecated_id"] == first
    # the secret is never shown again
    listed = client.get(HOOKS, headers=world.admin.bearer).json()
    assert "secret" not in json.dumps(listed) and hook["secret"] not in json.dumps(listed)


def test_the_signature_is_checked_the_way_the_readme_says(receiver):
    secret, body, t = "whsec_example", b'{"id":"1"}', 1_700_000_000
    value = signing.header(secret, t, body)
    assert value == f"t={t},v1=" + __import__("hmac").new(secret.encode(), f"{t}.".encode() + body,
                                                          "sha256").hexdigest()
    assert signing.verify(secret, value, body, now=t + 10)
    assert not signing.verify(secret, value, body, now=t + signing.TOLERANCE + 1)  # too old: a replayed capture


def test_failures_are_retried_with_backoff_and_recorded_until_attempts_run_out(client, world, visit_form, receiver,
                                                                               sender, engine, clock):
    register(client, world, receiver.url)
    receiver.statuses.extend([500, 503, 502, 500])
    submit(client, world, batch_item(new_instance_id()))

    waits = []
    for expected in ("retry", "retry", "retry", "failed"):
        assert sender.run_once()[expected] == 1
        (row,) = deliveries(engine)
        if expected == "retry":
            waits.append(round((row.next_attempt_at - clock()).total_seconds()))
            assert sender.run_once() == {"delivered": 0, "retry": 0, "failed": 0, "skipped": 0}  # not due yet
            clock.advance(seconds=waits[-1])
    assert waits == [30, 120, 600]  # BACKOFF with the jitter at its middle
    assert (row.state, row.attempts, row.last_status) == ("failed", 4, 500)
    with session_scope(engine) as s:
        attempts = list(s.exec(select(WebhookAttempt).order_by(WebhookAttempt.id)))
    assert [a.status_code for a in attempts] == [500, 503, 502, 500]
    assert all(a.error == f"HTTP {a.status_code}" and a.duration_ms >= 0 for a in attempts)
    assert len(receiver.requests) == 4


def test_a_redirect_is_not_followed_and_counts_as_a_failure(client, world, visit_form, receiver, sender,
                                                                    engine):
    register(client, world, receiver.url)
    receiver.statuses.append(302)
    submit(client, world, batch_item(new_instance_id()))
    assert sender.run_once()["retry"] == 1
    assert len(receiver.requests) == 1  # /elsewhere never asked
    (row,) = deliveries(engine)
    assert "redirect not followed" in row.last_error


def test_an_endpoint_that_keeps_failing_is_paused_and_the_admin_told(client, world, visit_form, receiver, engine,
                                                                     settings, clock):
    sender = Sender(engine, settings.secret, WebhookSettings(max_attempts=10, pause_after=3), now=clock,
                    rand=lambda: 0.5)
    hook = register(client, world, receiver.url)
    receiver.statuses.extend([500] * 3)
    submit(client, world, *[batch_item(new_instance_id()) for _ in range(3)])
    assert sender.run_once()["retry"] == 3
    listed = client.get(HOOKS, headers=world.admin.bearer).json()
    assert listed["attention"] is True
    (endpoint,) = listed["endpoints"]
    assert (endpoint["active"], endpoint["paused_reason"], endpoint["pending"]) == (False, "failures", 3)
    with session_scope(engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "webhook.paused")).one().object_id == str(hook["id"])
    # paused: nothing goes out, even when due; new events still queue up
    submit(client, world, batch_item(new_instance_id()))
    clock.advance(hours=1)
    assert sender.run_once()["delivered"] == 0
    # the admin resumes: everything waiting goes at once
    response = client.patch(f"{HOOKS}/{hook['id']}", json={"active": True}, headers=world.admin.bearer)
    assert response.json()["active"] is True and response.json()["consecutive_failures"] == 0
    assert sender.run_once()["delivered"] == 4
    assert client.get(HOOKS, headers=world.admin.bearer).json()["attention"] is False


def test_410_gone_disables_the_endpoint(client, world, visit_form, receiver, sender, engine):
    register(client, world, receiver.url)
    receiver.statuses.append(410)
    submit(client, world, batch_item(new_instance_id()))
    assert sender.run_once()["failed"] == 1
    (endpoint,) = client.get(HOOKS, headers=world.admin.bearer).json()["endpoints"]
    assert (endpoint["active"], endpoint["paused_reason"]) == (False, "gone")
    with session_scope(engine) as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "webhook.gone")).one().details["url"] == receiver.url


def test_replay_sends_the_same_event_again(client, world, visit_form, receiver, sender, engine):
    register(client, world, receiver.url)
    submit(client, world, batch_item(new_instance_id()))
    sender.run_once()
    (row,) = deliveries(engine)
    detail = client.get(f"{HOOKS}/deliveries/{row.id}", headers=world.admin.bearer).json()
    assert detail["state"] == "delivered" and detail["attempt_log"][0]["status_code"] == 200
    response = client.post(f"{HOOKS}/deliveries/{row.id}/replay", headers=world.admin.bearer)
    assert response.status_code == 201, response.text
    copy = response.json()
    assert (copy["replay_of"], copy["event_id"], copy["state"]) == (row.id, row.event_id, "pending")
    again = client.post(f"{HOOKS}/deliveries/{copy['id']}/replay", headers=world.admin.bearer)
    assert again.status_code == 409 and again.json()["error"]["code"] == "webhook.not_replayable"
    assert sender.run_once()["delivered"] == 1
    first, second = receiver.requests
    assert first.body == second.body  # same id: receivers deduplicate
    assert client.post(f"{HOOKS}/deliveries/999/replay", headers=world.admin.bearer).status_code == 404


def test_a_rolled_back_submission_never_sends_and_a_committed_one_is_queued(app, world, visit_form, receiver,
                                                                            engine, settings, client):
    register(client, world, receiver.url)
    with session_scope(engine) as s:
        version = s.exec(select(FormVersion)).one()

    def store(session) -> None:
        receive_submission(session, blobs=app.state.blobs, settings=settings, hooks=app.state.hooks,
                           actor=Actor(user=world.monitor.user), xml=visit_xml(version, new_instance_id()), files=[])
        session.flush()

    try:
        with session_scope(engine) as s:
            store(s)
            assert s.exec(select(func.count()).select_from(WebhookDelivery)).one() == 1  # written with the event
            raise RuntimeError("something after the submission fails: the request rolls back")
    except RuntimeError:
        pass
    assert deliveries(engine) == []
    with session_scope(engine) as s:
        store(s)
    assert len(deliveries(engine)) == 1


def test_outbox_rows_survive_a_restart_and_a_new_process_delivers_them(settings, engine, world, receiver,
                                                                      monkeypatch, visit_form, client):
    # "process" 1 (the client fixture's app, worker off): stores the submission and its outbox row, then stops
    register(client, world, receiver.url)
    submit(client, world, batch_item(new_instance_id()))
    client.app.state.engine.dispose()
    assert receiver.requests == [] and deliveries(engine)[0].state == "pending"
    # "process" 2: a new app over the same database, its worker started with the app
    monkeypatch.setenv("ASMFIELD_WEBHOOK_WORKER", "true")
    monkeypatch.setenv("ASMFIELD_WEBHOOK_POLL_SECONDS", "0.2")
    second = create_app(settings)
    with TestClient(second):
        (request,) = receiver.wait_for(1)
        for _ in range(600):  # the worker records the answer just after the receiver has it
            if deliveries(engine)[0].state == "delivered":
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the receiver got the delivery but the worker never recorded it")
    second.state.engine.dispose()
    assert request.json["event"] == "submission.created"


def test_two_workers_over_one_database_never_send_a_delivery_twice(client, world, visit_form, receiver, settings,
                                                                   clock):
    register(client, world, receiver.url)
    submit(client, world, *[batch_item(new_instance_id()) for _ in range(12)])
    engines = [make_engine(settings), make_engine(settings)]
    senders = [Sender(e, settings.secret, WebhookSettings(), now=clock) for e in engines]
    start = threading.Barrier(2)

    def work(sender: Sender) -> None:
        start.wait()
        sender.run_once()

    threads = [threading.Thread(target=work, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [r.json["id"] for r in receiver.requests]
    assert len(ids) == 12 and len(set(ids)) == 12
    with session_scope(engines[0]) as s:
        row = s.exec(select(WebhookDelivery)).first()
        assert not queries.claim(s, row.id, clock(), clock())  # delivered: nobody claims it again
        assert s.exec(select(func.count()).select_from(WebhookAttempt)).one() == 12
    for sender in senders:
        sender.close()
    for e in engines:
        e.dispose()


def test_a_worker_whose_engine_is_disposed_ends_without_an_error(settings, caplog):
    """An app torn down without its shutdown (its database dropped next) leaves no thread failing behind."""
    worker = Worker(Sender(make_engine(settings), settings.secret, WebhookSettings(poll_seconds=0.05)))
    worker.start()
    worker.sender.engine.dispose()
    worker._thread.join(timeout=30)  # noqa: SLF001 -- the thread is the point of this test
    assert not worker._thread.is_alive()  # noqa: SLF001
    assert "webhook delivery pass failed" not in caplog.text
