"""A Collect-like tablet against a real uvicorn process: forms down, submissions with photos up,
split at the advertised size, cut mid-upload, retried and resent — nothing lost, nothing twice.

Run over HTTP Basic, HTTP Digest and the device-token URL (``/key/{token}/...``).
"""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import select

from app import accounts
from app.db import session_scope
from forms.service import IncomingMedia
from forms.service import add_form as forms_add
from sync.models import Submission, SubmissionAttachment
from tests.e2e.collect import CollectClient, CollectError, Instance
from tests.e2e.conftest import E2E_MAX_SUBMISSION_BYTES
from tests.factories import VISIT_MD, new_instance_id, photo_of_bytes, sha256, visit_xml

pytestmark = pytest.mark.e2e

#: The sample visit form plus a select_one_from_file, so the form has media to download.
FORM_WITH_MEDIA = VISIT_MD.replace(
    "| | integer | workers | Workers seen | |",
    "| | integer | workers | Workers seen | |\n| | select_one_from_file places.csv | place | Place | |")
PLACES_CSV = b"name,label\nkamituga,Kamituga\nmwenga,Mwenga\n"


@pytest.fixture
def tablet_form(live_server, settings, engine):
    """The form with its media, published through the forms service; returns its version."""
    from app.blobs import FilesystemBlobStore

    with session_scope(engine) as s:
        result = forms_add(s, blobs=FilesystemBlobStore(settings.media_path), settings=settings, actor=None,
                           content=FORM_WITH_MEDIA.encode(), filename="field_visit.md", kind="site_visit",
                           media=[IncomingMedia(filename="places.csv", content=PLACES_CSV)])
        return result.version


@pytest.fixture(params=["basic", "digest", "device_token"])
def tablet(request, live_server, world, engine) -> CollectClient:
    """A tablet configured like Collect for one way of authenticating, as the monitor."""
    user = world.monitor
    if request.param == "device_token":
        with session_scope(engine) as s:
            _, token = accounts.create_device(s, name="tablet-e2e", user=user.user.id)
        client = CollectClient(f"{live_server.url}/key/{token}")
    elif request.param == "digest":
        client = CollectClient(live_server.url, auth=httpx.DigestAuth(user.username, user.password))
    else:
        client = CollectClient(live_server.url, auth=httpx.BasicAuth(user.username, user.password))
    yield client
    client.close()


def instance_with_photos(version, n_photos: int, *, seed: int) -> Instance:
    """A finalised instance with ``n_photos`` ~60 KB photos: the site photo and one per pit."""
    names = [f"{seed}-{i}.jpg" for i in range(n_photos)]
    files = {name: photo_of_bytes(60_000, seed=seed * 100 + i) for i, name in enumerate(names)}
    iid = new_instance_id()
    xml = visit_xml(version, iid, photo_name=names[0], pit_photos=names[1:], seed=seed)
    return Instance(xml=xml, files=files, instance_id=iid)


def server_state(engine) -> dict[str, tuple[bool, dict[str, str | None]]]:
    """instance id → (complete, {attachment name: stored sha256})."""
    with session_scope(engine) as s:
        out = {}
        for sub in s.exec(select(Submission).order_by(Submission.id)):
            rows = s.exec(select(SubmissionAttachment).where(SubmissionAttachment.submission_id == sub.id))
            out[sub.instance_id] = (sub.complete, {r.name: r.sha256 for r in rows})
        return out


def test_a_tablet_syncs_forms_and_photos_exactly_once(tablet, tablet_form, engine):
    forms = tablet.update_forms()
    assert set(forms) == {"field_visit"}
    device_form = forms["field_visit"]
    assert device_form.media == {"places.csv": PLACES_CSV}
    assert device_form.entry.version == "1"

    # Three ~60 KB photos do not fit under the advertised 150 KB: Collect splits the upload.
    first = instance_with_photos(tablet_form, 3, seed=1)
    sent = tablet.send(first)
    assert tablet.head_submission() == E2E_MAX_SUBMISSION_BYTES
    assert sent.posts >= 2 and set(sent.statuses) == {201}

    # The network drops in the middle of the next upload; the tablet retries it later, in full.
    second = instance_with_photos(tablet_form, 2, seed=2)
    tablet.send_cut(second, cut_after=40_000)
    assert second.instance_id not in server_state(engine)
    assert set(tablet.send(second).statuses) == {201}

    # Auto-send retries resend everything from scratch: acknowledged, never stored twice.
    for instance in (first, second):
        assert set(tablet.send(instance).statuses) == {201}

    state = server_state(engine)
    assert list(state) == [first.instance_id, second.instance_id]
    for instance in (first, second):
        complete, stored = state[instance.instance_id]
        assert complete
        assert stored == {name: sha256(body) for name, body in instance.files.items()}


@pytest.fixture
def basic_tablet(live_server, world) -> CollectClient:
    client = CollectClient(live_server.url, auth=httpx.BasicAuth(world.monitor.username, world.monitor.password))
    yield client
    client.close()


def test_forms_are_downloaded_again_only_when_they_change(basic_tablet, tablet_form):
    tablet = basic_tablet
    tablet.update_forms()
    before = [r for r in tablet.requests if r[0] == "GET"]
    tablet.update_forms()
    again = [r for r in tablet.requests if r[0] == "GET"][len(before):]
    assert [path for _, path, _ in again if path.endswith(".xml") or "attachments" in path] == []


def test_a_refused_post_stops_the_instance_with_the_servers_message(basic_tablet, tablet_form):
    tablet = basic_tablet
    bad = Instance(xml=b"<field_visit id='field_visit' version='99'><meta><instanceID>uuid:x</instanceID></meta>"
                       b"</field_visit>", instance_id="uuid:x")
    with pytest.raises(CollectError) as refused:
        tablet.send(bad)
    assert refused.value.status == 404
    assert "99" in str(refused.value)


def test_wrong_password_is_a_401_challenge(live_server, world, tablet_form):
    client = CollectClient(live_server.url, auth=httpx.BasicAuth(world.monitor.username, "wrong"))
    with pytest.raises(CollectError) as refused:
        client.form_list()
    client.close()
    assert refused.value.status == 401
