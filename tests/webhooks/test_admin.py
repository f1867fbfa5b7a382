"""Registering endpoints: admins only, clear 4xx for bad input, the secret shown once; the same from
``asmfield webhooks`` (add, list, pause/resume, deliveries, replay, deliver --once)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from tests.factories import batch_item, new_instance_id
from webhooks import endpoints
from webhooks.errors import BadUrl

HOOKS = "/api/v1/webhooks"
runner = CliRunner()


def run(settings, *args, code=0, env=None):
    env = {"ASMFIELD_DATA_DIR": str(settings.data_dir), "ASMFIELD_SECRET_KEY": settings.secret, **(env or {})}
    if settings.database_url:
        env["ASMFIELD_DATABASE_URL"] = settings.database_url
    result = runner.invoke(cli, ["webhooks", *args], env=env)
    assert result.exit_code == code, f"{args}: {result.output} {result.exception!r}"
    return result


def test_only_admins_register_and_bad_input_is_a_clear_422(client, world, visit_form):
    good = {"url": "https://example.org/hook", "events": ["submission.created"]}
    assert client.post(HOOKS, json=good, headers=world.coordinator.bearer).status_code == 403
    assert client.get(HOOKS, headers=world.monitor.bearer).status_code == 403
    for body, code in (({**good, "url": "ftp://example.org/x"}, "webhook.bad_url"),
                       ({**good, "url": "https://user:pw@example.org/x"}, "webhook.bad_url"),
                       ({**good, "url": "https:///nohost"}, "webhook.bad_url"),
                       ({**good, "events": ["submission.deleted"]}, "webhook.bad_event"),
                       ({**good, "form": "no_such_form"}, "webhook.unknown_form")):
        response = client.post(HOOKS, json=body, headers=world.admin.bearer)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["details"]["field"] in ("url", "events", "form")
    created = client.post(HOOKS, json={**good, "form": "field_visit"}, headers=world.admin.bearer).json()
    one = client.get(f"{HOOKS}/{created['id']}", headers=world.admin.bearer).json()
    assert "secret" not in one and one["form"] == "field_visit"
    changed = client.patch(f"{HOOKS}/{created['id']}", json={"form": "", "events": ["case.transition"]},
                           headers=world.admin.bearer).json()
    assert (changed["form"], changed["events"]) == (None, ["case.transition"])
    assert client.delete(f"{HOOKS}/{created['id']}", headers=world.admin.bearer).status_code == 204
    assert client.get(f"{HOOKS}/{created['id']}", headers=world.admin.bearer).status_code == 404


def test_private_targets_can_be_refused():
    assert endpoints.check_url("http://192.168.1.20:8080/in", allow_private=True)
    for url in ("http://127.0.0.1/in", "http://10.0.0.5/in", "http://[::1]/in", "http://169.254.169.254/"):
        with pytest.raises(BadUrl, match="non-public"):
            endpoints.check_url(url, allow_private=False)


def test_the_command_line_registers_lists_delivers_and_replays(client, world, visit_form, settings, receiver):
    out = json.loads(run(settings, "add", receiver.url, "--event", "submission.created", "--form", "field_visit",
                         "--json").stdout)
    assert out["secret"].startswith("whsec_") and out["form"] == "field_visit"
    assert "unknown event" in run(settings, "add", receiver.url, "--event", "nope", code=1).stderr
    client.post("/api/v1/sync/batches", json={"items": [batch_item(new_instance_id())]}, headers=world.monitor.bearer)
    assert "pending=1" in run(settings, "list").stdout
    assert "paused (admin)" in run(settings, "pause", str(out["id"])).stdout
    assert json.loads(run(settings, "deliver", "--once", "--json").stdout)["delivered"] == 0
    assert "active" in run(settings, "resume", str(out["id"])).stdout
    assert json.loads(run(settings, "deliver", "--once", "--json").stdout)["delivered"] == 1
    (delivery,) = json.loads(run(settings, "deliveries", "--json").stdout)["deliveries"]
    assert delivery["state"] == "delivered" and delivery["attempt_log"][0]["status_code"] == 200
    assert "queued again" in run(settings, "replay", str(delivery["id"])).stdout
    run(settings, "deliver", "--once")
    assert [r.json["id"] for r in receiver.requests] == [delivery["event_id"]] * 2
    assert "removed" in run(settings, "remove", str(out["id"])).stdout
    assert run(settings, "list").stdout.strip() == ""
