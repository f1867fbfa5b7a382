"""Fixtures shared by the sync tests."""

import pytest

from app.db import session_scope
from tests.factories import CASE_MD, add_form


@pytest.fixture
def visit_form(app, engine, settings, world):
    """The sample `field_visit` form (typed fields, a geopoint, photos), published."""
    with session_scope(engine) as s:
        form, _ = add_form(s, blobs=app.state.blobs, settings=settings)
    return form


@pytest.fixture
def visit_version(app, engine, settings, world):
    """The version of the sample `field_visit` form, published and detached from its session."""
    with session_scope(engine) as s:
        _, version = add_form(s, blobs=app.state.blobs, settings=settings)
        s.expunge(version)
    return version


@pytest.fixture
def case_version(app, engine, settings, world):
    """The sample ``case_check`` intake form (kind case_intake; ``child_photo`` is an image question)."""
    with session_scope(engine) as s:
        _, version = add_form(s, blobs=app.state.blobs, settings=settings, md=CASE_MD, kind="case_intake")
        s.expunge(version)
    return version
