"""One transaction per request, committed before the response is sent."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import select

from app.db import session_scope
from app.deps import SessionDep
from app.models import Organisation


def test_a_success_is_only_answered_after_the_commit(app, world):
    """A transaction that fails at commit must not have been answered 201 already."""

    def clash(session: SessionDep) -> dict:
        session.add(Organisation(name="NGO A", kind="ngo"))  # unique name: fails at commit
        return {"stored": True}

    app.add_api_route("/test-clash", clash, methods=["POST"], status_code=201)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/test-clash")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"


def test_a_domain_error_rolls_the_whole_request_back(app, world, engine):
    from app.errors import Conflict

    def half(session: SessionDep) -> dict:
        session.add(Organisation(name="Half done", kind="ngo"))
        session.flush()
        raise Conflict("changed my mind", code="test.conflict")

    app.add_api_route("/test-half", half, methods=["POST"])
    with TestClient(app) as client:
        assert client.post("/test-half").status_code == 409
    with session_scope(engine) as s:
        assert s.exec(select(Organisation).where(Organisation.name == "Half done")).first() is None


def test_a_success_is_stored(app, world, engine):
    def store(session: SessionDep) -> dict:
        session.add(Organisation(name="Stored", kind="ngo"))
        return {}

    app.add_api_route("/test-store", store, methods=["POST"])
    with TestClient(app) as client:
        assert client.post("/test-store").status_code == 200
    with session_scope(engine) as s:
        assert s.exec(select(Organisation).where(Organisation.name == "Stored")).one()
