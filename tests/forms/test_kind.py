"""Issue 9, finding 3: a form's kind decides who reads its submissions, so it is fixed once the form
has any submission (409 ``form.kind_fixed``) — by PATCH, by re-uploading the XLSForm with another
kind, and by ``asmfield forms add --kind``. Before the first submission it may still change."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import session_scope
from forms import queries
from forms.models import Form, FormVersion
from sync.submission_xml import build_instance_xml
from tests.forms.factories import simple_form, upload

INTAKE = "intake"


def submit_case(client, world, session) -> str:
    """A caseworker's intake on the ``intake`` form (a case form), over OpenRosa."""
    form = queries.get_form(session, INTAKE)
    version = queries.published_version(session, form)
    instance_id = f"uuid:{uuid.uuid4()}"
    xml = build_instance_xml(version, {f"/{INTAKE}/remark": "Mwamba Kabeya, +243970000001"}, instance_id)
    r = client.post("/submission", files=[("xml_submission_file", ("submission.xml", xml, "text/xml"))],
                    headers={**world.caseworker_a.basic, "X-OpenRosa-Version": "1.0"})
    assert r.status_code == 201, r.text
    return instance_id


def kind_of(engine) -> str:
    with session_scope(engine) as s:
        return s.exec(select(Form.kind).where(Form.xml_form_id == INTAKE)).one()


@pytest.fixture
def intake_form(client, world):
    r = upload(client, world.coordinator, simple_form(form_id=INTAKE, version="1"), kind="case_intake")
    assert r.status_code == 201, r.text


def test_the_kind_may_change_until_the_first_submission(client, world, engine, intake_form):
    for kind in ("general", "case_intake"):
        r = client.patch(f"/api/v1/forms/{INTAKE}", json={"kind": kind}, headers=world.coordinator.bearer)
        assert r.status_code == 200 and r.json()["kind"] == kind


def test_a_case_form_with_submissions_cannot_be_patched_into_another_kind(client, world, engine, session,
                                                                          intake_form):
    instance_id = submit_case(client, world, session)
    for kind in ("general", "site_visit", "case_followup"):
        r = client.patch(f"/api/v1/forms/{INTAKE}", json={"kind": kind}, headers=world.coordinator.bearer)
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "form.kind_fixed"
    assert kind_of(engine) == "case_intake"
    # Naming the kind it already has changes nothing and is fine.
    r = client.patch(f"/api/v1/forms/{INTAKE}", json={"kind": "case_intake"}, headers=world.coordinator.bearer)
    assert r.status_code == 200
    # What the attack was after stays out of reach: no data in the form's detail, none by the generic routes.
    detail = client.get(f"/api/v1/forms/{INTAKE}", headers=world.coordinator.bearer)
    assert detail.status_code == 200 and "Mwamba" not in detail.text
    for path in (f"/api/v1/forms/{INTAKE}/submissions", f"/api/v1/submissions/{instance_id}"):
        r = client.get(path, headers=world.coordinator.bearer)
        assert r.status_code == 403 and "Mwamba" not in r.text


def test_reuploading_with_another_kind_is_refused_and_publishes_nothing(client, world, engine, session, intake_form):
    submit_case(client, world, session)
    same = upload(client, world.coordinator, simple_form(form_id=INTAKE, version="1"), kind="general")
    newer = upload(client, world.coordinator, simple_form(form_id=INTAKE, version="2"), kind="general")
    for r in (same, newer):
        assert r.status_code == 409 and r.json()["error"]["code"] == "form.kind_fixed"
    assert kind_of(engine) == "case_intake"
    with session_scope(engine) as s:
        assert s.exec(select(FormVersion.version).join(Form).where(Form.xml_form_id == INTAKE)).all() == ["1"]
    # Without a kind, a new version is published as usual and keeps the kind.
    assert upload(client, world.coordinator, simple_form(form_id=INTAKE, version="2")).json()["kind"] == "case_intake"


def test_the_cli_cannot_change_the_kind_either(client, world, engine, session, settings, monkeypatch, tmp_path,
                                               intake_form):
    monkeypatch.setenv("ASMFIELD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ASMFIELD_SECRET_KEY", settings.secret)
    monkeypatch.setenv("ASMFIELD_DATABASE_URL", settings.db_url)
    submit_case(client, world, session)
    path = tmp_path / "intake.md"
    path.write_bytes(simple_form(form_id=INTAKE, version="3"))
    result = CliRunner().invoke(cli, ["forms", "add", str(path), "--kind", "general"])
    assert result.exit_code == 1 and "kind" in result.output and "fixed" in result.output
    assert kind_of(engine) == "case_intake"
