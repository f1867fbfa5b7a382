"""The JSON error shape is part of the API: pinned here."""


def test_error_shape_is_pinned(client, world):
    response = client.get("/api/v1/users", headers=world.monitor.bearer)
    assert response.status_code == 403
    assert response.json() == {
        "error": {"code": "auth.forbidden", "message": "this needs one of the roles: admin, coordinator", "details": {}}
    }


def test_unknown_route_uses_the_same_shape(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert set(response.json()["error"]) == {"code", "message", "details"}


def test_validation_errors_name_the_field(client, world):
    response = client.post("/api/v1/organisations", json={"name": "X"}, headers=world.admin.bearer)
    assert response.status_code == 422
    body = response.json()["error"]
    assert body["code"] == "request.invalid"
    assert "kind" in body["message"]


def test_openrosa_routes_get_the_same_error_as_openrosa_xml(app):
    from fastapi import Depends, Request
    from fastapi.testclient import TestClient

    from app.errors import NotFound

    def mark(request: Request) -> None:
        request.state.openrosa = True

    def missing() -> None:
        raise NotFound("form 'x' & <y> not found", code="form.not_found")

    app.add_api_route("/test-openrosa-missing", missing, dependencies=[Depends(mark)])
    with TestClient(app) as client:
        response = client.get("/test-openrosa-missing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.text == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="0">'
        "<message nature=\"error\">form 'x' &amp; &lt;y&gt; not found</message></OpenRosaResponse>"
    )


def test_an_unexpected_error_is_a_logged_500_without_details(app):
    from fastapi.testclient import TestClient

    def broken() -> None:
        raise KeyError("secret internals")

    app.add_api_route("/test-broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/test-broken")
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "internal error; it has been logged",
                                         "details": {}}}


def test_numbers_out_of_the_database_range_are_400(app):
    from fastapi.testclient import TestClient

    def overflow() -> None:
        raise OverflowError("Python int too large to convert to SQLite INTEGER")

    app.add_api_route("/test-overflow", overflow)
    with TestClient(app) as client:
        response = client.get("/test-overflow")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "request.invalid_value"


def test_method_not_allowed_uses_the_shape(client):
    response = client.delete("/healthz")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
