"""Health endpoints: process up, database reachable."""


def test_healthz_says_ok(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_readyz_is_503_when_the_database_is_gone(client, app):
    app.state.engine.dispose()
    from sqlalchemy import create_engine

    app.state.engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_pre_ping=False)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
