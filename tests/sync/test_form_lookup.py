"""``sync.form_lookup``: the forms and versions a submission names, remembered per session only."""

from __future__ import annotations

from unittest.mock import ANY

import pytest

from app.db import session_scope
from app.main import create_app
from forms.errors import FormVersionNotFound
from sync import form_lookup, ingest
from tests.conftest import fresh_database
from tests.sync.factories import make_form, typed_visit_data, xml_for


@pytest.fixture
def other_app(tmp_path, settings, db_template):
    """A second app over a second database (another clone of the migrated template)."""
    with fresh_database(tmp_path / "other", db_template) as other_settings:
        application = create_app(other_settings)
        yield application
        application.state.engine.dispose()


def test_two_apps_over_two_databases_never_see_each_others_forms(app, other_app):
    # The same xml_form_id under different ids and with different versions in the two databases.
    with session_scope(app.state.engine) as s:
        form_a, _ = make_form(s, app.state.settings, form_id="visit", version="2")
        form_a_id = form_a.id
    with session_scope(other_app.state.engine) as s:
        make_form(s, other_app.state.settings, form_id="other")
        form_b, _ = make_form(s, other_app.state.settings, form_id="visit", version="1")
        form_b_id = form_b.id
    assert form_a_id != form_b_id

    for _ in range(2):  # twice: the second round would find anything remembered by the first
        for application, own_id, own, foreign in ((app, form_a_id, "2", "1"), (other_app, form_b_id, "1", "2")):
            with session_scope(application.state.engine) as s:
                form = form_lookup.get_form(s, "visit")
                assert form.id == own_id
                version = form_lookup.get_version(s, form, own)
                assert (version.form_id, version.version) == (own_id, own)
                with pytest.raises(FormVersionNotFound):
                    form_lookup.get_version(s, form, foreign)
                result = ingest.receive_submission(
                    s, blobs=application.state.blobs, settings=application.state.settings,
                    hooks=application.state.hooks, actor=None, xml=xml_for(version, typed_visit_data()), files=[])
                assert (result.status, result.submission.form_id) == ("created", own_id)
                assert result.submission.form_version_id == version.id


def test_ids_are_remembered_by_the_session_not_the_process(app):
    with session_scope(app.state.engine) as s:
        make_form(s, app.state.settings, form_id="visit")
    with session_scope(app.state.engine) as s:
        form = form_lookup.get_form(s, "visit")
        form_lookup.get_version(s, form, "1")
        assert s.info[form_lookup._IDS] == {("form", "visit"): form.id, ("version", form.id, "1"): ANY}
    with session_scope(app.state.engine) as s:
        assert form_lookup._IDS not in s.info
    module_dicts = [name for name, value in vars(form_lookup).items()
                    if isinstance(value, dict) and not name.startswith("__")]
    assert module_dicts == []
