"""``app.events``: what sync announces and asks, and who answers, per composition (issue 10)."""

from __future__ import annotations

import pytest

from app.composition import CAPABILITIES, build_hooks
from app.events import GeneratedMedia, Hooks, SubmissionStored
from app.main import create_app
from cases import ingest as cases_ingest
from geodata import ingest as geodata_ingest
from webhooks import outbox as webhooks_outbox


def test_subscribers_run_in_registration_order_for_their_event_type_only() -> None:
    hooks, seen = Hooks(), []
    hooks.subscribe(SubmissionStored, lambda event: seen.append(("first", event.actor)))
    hooks.subscribe(SubmissionStored, lambda event: seen.append(("second", event.actor)))
    hooks.subscribe(int, lambda event: seen.append(("int", event)))
    hooks.emit(SubmissionStored(session=None, submission=None, form=None, version=None, actor=None, settings=None, blobs=None))
    assert seen == [("first", None), ("second", None)]


def test_the_first_edit_policy_with_an_opinion_decides() -> None:
    hooks = Hooks()
    assert hooks.may_edit_record(None, actor=None, form=None, submission=None) is None  # nobody covers it
    hooks.edit_policies += [lambda *_: None, lambda *_: False, lambda *_: True]
    assert hooks.may_edit_record(None, actor=None, form=None, submission=None) is False


def test_any_restricted_data_policy_restricts() -> None:
    hooks = Hooks()
    assert not hooks.is_restricted_data(None, form=None)
    hooks.restricted_data_policies += [lambda *_: False, lambda *_: True]
    assert hooks.is_restricted_data(None, form=None)


def test_two_capabilities_cannot_generate_the_same_media_file() -> None:
    hooks = Hooks()
    hooks.add_media(GeneratedMedia("sites.csv", "text/csv"))
    with pytest.raises(ValueError, match="sites.csv"):
        hooks.add_media(GeneratedMedia("sites.csv", "text/csv"))


def test_the_composition_registers_geodata_before_cases_and_their_media() -> None:
    """Sites are mapped before case management reads the submission; forms never names these files."""
    hooks = build_hooks()
    assert hooks.subscribers[SubmissionStored] == [geodata_ingest.on_submission_stored,
                                                   cases_ingest.on_submission_stored,
                                                   webhooks_outbox.on_submission_stored]  # last: sees the site
    assert hooks.edit_policies == [cases_ingest.edit_policy]
    assert hooks.restricted_data_policies == [cases_ingest.holds_case_data]
    assert hooks.per_caller_names() == {"cases.csv"}
    assert set(hooks.placeholders()) == {"sites.csv", "sites.geojson"}
    names = [c.name for c in CAPABILITIES]
    assert names.index("geodata") < names.index("cases")  # a visit is placed on its site before cases act


def test_each_app_holds_its_own_hooks(app, settings) -> None:
    """No module-level registry: a subscription added to one app's hooks is not seen by another."""
    other = create_app(settings)
    app.state.hooks.subscribe(SubmissionStored, print)
    assert print not in other.state.hooks.subscribers[SubmissionStored]
    other.state.engine.dispose()
