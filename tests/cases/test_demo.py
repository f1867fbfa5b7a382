"""The demo: cases in every state, made through real submissions; a second run changes nothing."""

from sqlmodel import select

from app.blobs import FilesystemBlobStore
from app.composition import build_hooks
from app.db import session_scope
from app.demo import seed_accounts
from cases import lifecycle
from cases.demo import seed
from cases.models import ChildCase
from forms.demo import seed as seed_forms


def test_demo_cases_cover_every_state_and_seeding_twice_changes_nothing(engine, settings):
    with session_scope(engine) as s:
        seed_accounts(s)
        s.flush()
        seed_forms(s, settings, build_hooks(), FilesystemBlobStore(settings.media_path))
        s.flush()
        summary = seed(s, settings, build_hooks(), FilesystemBlobStore(settings.media_path))
    assert summary["flagged_for_review"] == 2
    with session_scope(engine) as s:
        states = {c.status for c in s.exec(select(ChildCase)).all()}
        assert states == set(lifecycle.STATES)
        count = len(s.exec(select(ChildCase)).all())
    with session_scope(engine) as s:
        again = seed(s, settings, build_hooks(), FilesystemBlobStore(settings.media_path))
    assert again == {"cases": count, "created": 0}
