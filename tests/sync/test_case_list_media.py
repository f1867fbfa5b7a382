"""Issue 9, finding 3: the per-organisation ``cases.csv`` (the offline case list of a follow-up form)
reaches only the caseworkers of the NGO whose cases it lists (and their tablets): not the
coordinator, an admin, a monitor or another NGO, neither by the manifest nor by the attachment URL,
and nobody can plant a stored ``cases.csv`` in its place."""

from __future__ import annotations

from datetime import date

from app import accounts
from app.db import session_scope
from cases import opening as cases_opening
from tests.sync.factories import make_form

FOLLOWUP_MD = """
| survey   |                                 |           |        |
|          | type                            | name      | label  |
|          | select_one_from_file cases.csv  | case_code | Case   |
| settings |                                 |           |        |
|          | form_id                         | version   |        |
|          | {form_id}                       | {version} |        |
"""
OR = {"X-OpenRosa-Version": "1.0"}
CSV = "/forms/followup/attachments/cases.csv"
MANIFEST = "/forms/followup/manifest"


def test_only_the_owning_ngo_gets_its_case_list(client, engine, settings, world):
    with session_scope(engine) as s:
        make_form(s, settings, md=FOLLOWUP_MD, form_id="followup", kind="case_followup")
        case = cases_opening.new_case(s, root_instance_id="uuid:intake-a", organisation_id=world.ngo_a.id,
                                      classification="wfcl_hazardous", classifier_version="2026.1",
                                      date_identified=date(2026, 1, 5), age_band="12-14", site_code="KOL-001")
        case.status = "accepted"
        code = case.code
        _, token_a = accounts.create_device(s, name="tablet-a", user=world.caseworker_a.user.id)
        _, token_b = accounts.create_device(s, name="tablet-b", user=world.caseworker_b.user.id)
    owner = client.get(CSV, headers={**OR, **world.caseworker_a.basic})
    assert owner.status_code == 200 and code in owner.text
    assert code in client.get(f"/key/{token_a}{CSV}", headers=OR).text
    assert "cases.csv" in client.get(MANIFEST, headers={**OR, **world.caseworker_a.basic}).text

    other_ngo = client.get(CSV, headers={**OR, **world.caseworker_b.basic})
    assert other_ngo.status_code == 200 and code not in other_ngo.text
    assert code not in client.get(f"/key/{token_b}{CSV}", headers=OR).text
    for person in (world.coordinator, world.admin):
        assert client.get(CSV, headers={**OR, **person.basic}).status_code == 404
        assert "cases.csv" not in client.get(MANIFEST, headers={**OR, **person.basic}).text
    for path in (CSV, MANIFEST):
        assert client.get(path, headers={**OR, **world.monitor.basic}).status_code == 403

    planted = client.post("/api/v1/forms/followup/media", files=[("file", ("cases.csv", b"name,label\nX,Y\n"))],
                          headers=world.coordinator.bearer)
    assert planted.status_code == 422 and planted.json()["error"]["code"] == "form.media_generated"
    assert client.get(CSV, headers={**OR, **world.coordinator.basic}).status_code == 404
