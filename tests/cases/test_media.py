"""``cases.csv``, the per-caller form media of open cases (``cases.media``): no names."""

from app import accounts
from app.db import session_scope
from tests.cases.factories import go


def test_the_case_list_csv_holds_the_callers_open_cases_and_no_names(client, kit, world):
    cw_a, co = world.caseworker_a, world.coordinator
    open_code = kit.intake(cw_a).code
    for action, who in (("verify", co), ("refer", co), ("accept", cw_a)):
        go(client, who, open_code, action)
    not_yet = kit.intake(cw_a, child_given_name="Ilunga").code  # submitted: not in the follow-up list
    b_code = kit.intake(world.caseworker_b).code
    manifest = client.get("/forms/child_case_followup/manifest", headers=cw_a.basic)
    assert manifest.status_code == 200 and "cases.csv" in manifest.text
    csv = client.get("/forms/child_case_followup/attachments/cases.csv", headers=cw_a.basic)
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert lines[0] == "name,label,age_band,site,status"
    assert lines[1].startswith(f"{open_code},{open_code} · 12-14,12-14,,accepted")
    assert not_yet not in csv.text and b_code not in csv.text and "Mwamba" not in csv.text
    # Other organisations' tablets and the coordinator get no case list at all.
    assert open_code not in client.get("/forms/child_case_followup/attachments/cases.csv",
                                       headers=world.caseworker_b.basic).text
    assert "cases.csv" not in client.get("/forms/child_case_followup/manifest", headers=co.basic).text
    assert client.get("/forms/child_case_followup/attachments/cases.csv", headers=co.basic).status_code == 404
    # A tablet acts as its caseworker: same list through its token URL.

    with session_scope(kit.engine) as s:
        _, token = accounts.create_device(s, name="tablet-ngo-a", user=cw_a.user.id)
    on_tablet = client.get(f"/key/{token}/forms/child_case_followup/attachments/cases.csv")
    assert on_tablet.status_code == 200 and on_tablet.text == csv.text
