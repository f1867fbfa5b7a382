"""Who may export what: monitors their own visits, caseworkers no site-visit data; case forms only
as the cases capability allows (a caseworker the cases of their own NGO, every column; the
coordinator the cases that consented to statistics, never an identifying field; admins and
monitors nothing); records case management took in never leave through another form's export; every
export audited with its spec."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
from sqlmodel import Session, select

from app.db import session_scope
from app.models import AuditLog
from cases.access import IDENTIFYING_NAMES
from cases.models import CaseSubmission
from sync.models import Submission


def main_csv(client, person, form: str = "export_visit", query: str = "") -> pd.DataFrame:  # noqa: ANN001
    response = client.get(f"/api/v1/forms/{form}/export.csv{query}", headers=person.bearer)
    assert response.status_code == 200, response.text
    return pd.read_csv(io.BytesIO(response.content), encoding="utf-8-sig")


def test_monitors_export_their_own_visits_and_staff_every_visit(client, kit, visits):
    w = kit.world
    assert set(main_csv(client, w.monitor)["_uuid"]) == {visits["edited"], visits["second"]}
    assert set(main_csv(client, w.monitor2)["_uuid"]) == {visits["third"]}
    every = {visits["edited"], visits["second"], visits["third"], visits["outside"]}
    assert set(main_csv(client, w.coordinator)["_uuid"]) == every
    assert set(main_csv(client, w.admin)["_uuid"]) == every
    # their own edit history too, and nobody else's repeats
    response = client.get("/api/v1/forms/export_visit/export.zip?include_edits=true", headers=w.monitor.bearer)
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    pits = pd.read_csv(archive.open("export_visit-pits.csv"), encoding="utf-8-sig")
    assert set(pits["_parent_uuid"]) == {visits["first"], visits["edited"]}


def test_caseworkers_export_no_site_visit_data(client, kit, visits):
    for route in ("export.csv", "export.zip", "export.xlsx"):
        response = client.get(f"/api/v1/forms/export_visit/{route}", headers=kit.world.caseworker_a.bearer)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "export.forbidden"


def test_a_caseworker_exports_the_cases_of_their_own_organisation_with_every_column(client, kit, intakes):
    frame = main_csv(client, kit.world.caseworker_a, "child_case_intake")
    assert set(frame["_uuid"]) == {intakes["a"], intakes["a_no_stats"]}
    assert set(frame["identity-child_given_name"]) == {"Amani", "Chausiku"}
    assert frame["_case"].str.startswith("CL-").all()
    frame = main_csv(client, kit.world.caseworker_b, "child_case_intake")
    assert list(frame["_uuid"]) == [intakes["b"]]


def test_the_coordinator_exports_consenting_cases_without_any_identifying_field(client, kit, intakes):
    response = client.get("/api/v1/forms/child_case_intake/export.zip?headers=labels&choices=labels",
                          headers=kit.world.coordinator.bearer)
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    text = "".join(archive.read(name).decode("utf-8-sig") for name in archive.namelist())
    for value in ("Amani", "Bahati", "Chausiku", "Kabeya", "+243970000001", "washing pond"):
        assert value not in text
    frame = main_csv(client, kit.world.coordinator, "child_case_intake")
    assert set(frame["_uuid"]) == {intakes["a"], intakes["b"]}  # not the case without consent to statistics
    names = {column.rsplit("-", 1)[-1] for column in frame.columns}
    assert names.isdisjoint(IDENTIFYING_NAMES)
    # what the KPIs need is there
    assert {"sex", "age_estimated_years", "activities", "consent_reporting"} <= names


def test_admins_and_monitors_do_not_export_case_forms(client, kit, intakes):
    for person in (kit.world.admin, kit.world.monitor):
        response = client.get("/api/v1/forms/child_case_intake/export.zip", headers=person.bearer)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "export.case_data"


def test_every_export_is_audited_with_its_spec_and_the_fields_left_out(client, kit, intakes, engine):
    client.get("/api/v1/forms/child_case_intake/export.csv?since=2026-01-01", headers=kit.world.coordinator.bearer)
    with Session(engine) as s:
        entry = s.exec(select(AuditLog).where(AuditLog.action == "export.create")).one()
    assert entry.actor_user_id == kit.world.coordinator.user.id
    assert entry.object_id == "child_case_intake"
    assert entry.details["spec"]["since"].startswith("2026-01-01T00:00:00")
    assert "/child_case_intake/identity/child_given_name" in entry.details["dropped"]


def test_a_visit_that_case_management_took_in_is_left_out_of_every_export(client, kit, visits, engine):
    with session_scope(engine) as s:
        sub = s.exec(select(Submission).where(Submission.instance_id == visits["second"])).one()
        # Written directly: case management links only case-form submissions; this stands for a form
        # whose records it took in before its kind was changed (Hooks.is_restricted_data says yes).
        s.add(CaseSubmission(submission_id=sub.id, root_instance_id=sub.root_instance_id, kind="intake"))
    assert set(main_csv(client, kit.world.coordinator)["_uuid"]) == {visits["edited"], visits["third"], visits["outside"]}
    assert set(main_csv(client, kit.world.monitor)["_uuid"]) == {visits["edited"]}
