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


KERNEL_PREFIXES = ("/healthz", "/readyz", "/api/v1/login", "/api/v1/logout", "/api/v1/me", "/api/v1/organisations",
                   "/api/v1/users", "/api/v1/devices", "/api/v1/tokens", "/api/v1/audit")


def test_every_accounts_devices_tokens_audit_and_health_route_describes_its_answer(app):
    """Typed read models (``app.schemas``): each success answer is a named schema, never a bare object."""
    untyped = []
    for path, operations in app.openapi()["paths"].items():
        if not any(path == p or path.startswith(p + "/") for p in KERNEL_PREFIXES):
            continue
        for method, op in operations.items():
            ok = next(r for code, r in op["responses"].items() if code.startswith("2"))
            schema = ok.get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" not in schema and "$ref" not in schema.get("items", {}):
                untyped.append(f"{method.upper()} {path}")
    assert untyped == []
