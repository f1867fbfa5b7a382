"""What a caller reads (``cases.reading``): case photos only for the owning NGO, without metadata."""

import io

from PIL import Image

from sync.media import IncomingFile
from tests.cases.conftest import eligible_answers
from tests.cases.factories import go


def test_case_photos_are_served_only_to_the_owning_ngo_without_metadata(client, kit, world, tmp_path):
    path = tmp_path / "child.jpg"
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "S", 2: (10.0, 42.0, 0.0)}  # GPS
    Image.new("RGB", (64, 48), (10, 200, 40)).save(path, "JPEG", exif=exif.tobytes())
    photo = IncomingFile(name="child.jpg", path=path, size=path.stat().st_size, media_type="image/jpeg")
    sub = kit.submit(world.caseworker_a, "child_case_intake",
                     eligible_answers(consent_photo="yes", child_photo="child.jpg"), files=[photo])
    code = kit.case_of(sub).code
    url = f"/api/v1/cases/{code}/photos/child.jpg"
    r = client.get(url, headers=world.caseworker_a.bearer)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    served = Image.open(io.BytesIO(r.content))
    assert not served.getexif() and "exif" not in served.info
    assert client.get(url, headers=world.caseworker_b.bearer).status_code == 404
    assert client.get(url, headers=world.admin.bearer).status_code == 403
    assert client.get(f"/api/v1/cases/{code}/photos/other.jpg", headers=world.caseworker_a.bearer).status_code == 404
    assert client.get(f"/api/v1/cases/{code}/identity", headers=world.caseworker_a.bearer).json()["photos"] == [
        "child.jpg"]
    for action in ("verify", "refer"):
        go(client, world.coordinator, code, action, **({"organisation": "NGO A"} if action == "refer" else {}))
    go(client, world.caseworker_a, code, "accept")
    assert client.get(url, headers=world.coordinator.bearer).status_code == 403


FACTS = {"code", "status", "updated_at", "person", "organisation", "proposed_organisation", "site", "province",
         "risk_level", "urgent", "classification", "sex", "age_band", "date_identified", "consent", "pending_request",
         "closure_reason", "opened_at", "closed_at", "duplicate_of", "identity_erased", "identity_readable",
         "allowed_actions"}


def test_a_case_keeps_its_json_shape_in_the_list_and_the_detail(client, kit, world):
    """Issue 10: ``CasePublic`` answers what the dicts answered: the list without events, services
    and follow-ups, the detail with them, an event's ``from``; unset fields absent, set ones even when null."""
    code = kit.intake(world.caseworker_a).code
    co = world.coordinator.bearer
    [listed] = client.get("/api/v1/cases", headers=co).json()["cases"]
    assert set(listed) == FACTS and listed["code"] == code and listed["closed_at"] is None
    detail = client.get(f"/api/v1/cases/{code}", headers=co).json()
    assert set(detail) == FACTS | {"events", "services", "followups"}
    assert set(detail["consent"]) == {"given_by", "services", "share_partner", "reporting", "photo"}
    [event] = detail["events"]
    assert event["from"] is None and event["to"] == "submitted"
    assert set(event) == {"action", "from", "to", "role", "actor", "organisation", "device", "auth", "at", "reason"}
