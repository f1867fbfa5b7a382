"""Fixtures shared by the sync tests."""

import pytest

from app.db import session_scope
from tests.factories import add_form


@pytest.fixture
def visit_form(app, engine, settings, world):
    """The sample `field_visit` form (typed fields, a geopoint, photos), published."""
    with session_scope(engine) as s:
        form, _ = add_form(s, blobs=app.state.blobs, settings=settings)
    return form
