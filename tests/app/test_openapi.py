"""The OpenAPI description: every operation has its own id (client generators key on it), and
building it warns about nothing (issue 10: ``/submission`` HEAD and GET shared one id)."""

from __future__ import annotations

import warnings
from collections import Counter


def test_every_operation_has_its_own_id_and_building_the_schema_warns_nothing(app):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        schema = app.openapi()
    ids = Counter(op["operationId"] for path in schema["paths"].values() for op in path.values()
                  if isinstance(op, dict) and "operationId" in op)
    assert [name for name, count in ids.items() if count > 1] == []
    assert {"head", "get"} <= set(schema["paths"]["/submission"])
