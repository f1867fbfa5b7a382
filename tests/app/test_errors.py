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
