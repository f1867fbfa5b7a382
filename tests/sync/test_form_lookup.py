"""``sync.form_lookup``: the forms and versions a submission names; ids remembered per process and
engine, rows always read and checked (a closed form refuses at once, whoever closed it)."""

from __future__ import annotations

from unittest.mock import ANY

import pytest

from app.db import session_scope
from app.main import create_app
from forms import service as forms_service
from forms.errors import FormClosed, FormVersionNotFound
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


def test_ids_are_remembered_across_sessions_per_engine(app, other_app):
    with session_scope(app.state.engine) as s:
        make_form(s, app.state.settings, form_id="visit")
    with session_scope(app.state.engine) as s:
        form = form_lookup.get_form(s, "visit")
        form_lookup.get_version(s, form, "1")
    assert form_lookup._IDS[app.state.engine] == {("form", "visit"): form.id, ("version", form.id, "1"): ANY}
    assert other_app.state.engine not in form_lookup._IDS


def _receive(application, form_id="visit", version="1"):
    with session_scope(application.state.engine) as s:
        form = form_lookup.get_form(s, form_id)
        return ingest.receive_submission(
            s, blobs=application.state.blobs, settings=application.state.settings, hooks=application.state.hooks,
            actor=None, xml=xml_for(form_lookup.get_version(s, form, version), typed_visit_data()), files=[])


def test_a_form_closed_by_another_process_refuses_the_next_submission(app, settings):
    """Ids are remembered, state is not: closing (and reopening) through a second app over the same
    database counts on the first app's very next submission; a version added later is found."""
    with session_scope(app.state.engine) as s:
        make_form(s, app.state.settings, form_id="visit")
    assert _receive(app).status == "created"  # ids remembered now
    other = create_app(settings)
    try:
        with session_scope(other.state.engine) as s:
            forms_service.set_state(s, form=forms_service.require_form(s, "visit"), state="closed", actor=None)
        with pytest.raises(FormClosed):
            _receive(app)
        with session_scope(other.state.engine) as s:
            forms_service.set_state(s, form=forms_service.require_form(s, "visit"), state="open", actor=None)
        assert _receive(app).status == "created"
        with pytest.raises(FormVersionNotFound):
            _receive(app, version="2")
        with session_scope(other.state.engine) as s:
            make_form(s, other.state.settings, form_id="visit", version="2")
        assert _receive(app, version="2").status == "created"
        assert _receive(app, version="1").status == "created"
    finally:
        other.state.engine.dispose()


def test_a_stale_remembered_id_is_checked_not_trusted(app):
    with session_scope(app.state.engine) as s:
        make_form(s, app.state.settings, form_id="visit")
        make_form(s, app.state.settings, form_id="other")
    assert _receive(app).status == "created"
    ids = form_lookup._IDS[app.state.engine]
    with session_scope(app.state.engine) as s:
        other_form = form_lookup.get_form(s, "other")
        other_ids = (other_form.id, form_lookup.get_version(s, other_form, "1").id)
    for wrong_form, wrong_version in (other_ids, (10**9, 10**9)):
        ids[("form", "visit")] = wrong_form
        for key in [k for k in ids if k[0] == "version"]:
            ids[key] = wrong_version
        result = _receive(app)
        assert result.status == "created"
        with session_scope(app.state.engine) as s:
            assert form_lookup.get_form(s, "visit").id == result.submission.form_id
