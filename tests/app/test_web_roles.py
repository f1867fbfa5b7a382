"""Each role signs in and sees, in the menu and by URL, what README's roles table allows — and not the rest.

(A monitor's /cases is allowed but empty, as the case API answers: monitors do not submit case forms.)"""

from __future__ import annotations

import pytest

MENU = "nav.wide li a"
EXPECTED = {
    "admin": ["/", "/map", "/sites", "/submissions", "/forms", "/exports", "/people", "/devices", "/webhooks"],
    "coord": ["/", "/map", "/sites", "/submissions", "/forms", "/exports", "/cases", "/people", "/devices"],
    "monitor1": ["/map", "/sites", "/submissions", "/forms", "/exports", "/devices"],
    "cw_kipaji": ["/forms", "/exports", "/cases", "/cases/kpi", "/cases/handoff", "/devices"],
}
REFUSED = {
    "admin": ["/cases"],
    "coord": ["/webhooks"],
    "monitor1": ["/", "/cases/kpi", "/people", "/webhooks"],
    "cw_kipaji": ["/map", "/sites", "/submissions", "/people", "/cases/duplicates", "/webhooks"],
}


@pytest.mark.browser
@pytest.mark.parametrize("username", list(EXPECTED))
def test_each_role_sees_its_menu_and_is_refused_the_rest(web, username):
    page = web.sign_in(username, lang="en", viewport={"width": 1366, "height": 768})
    page.goto(web.url("/"))
    assert page.locator(MENU).evaluate_all("links => links.map(a => a.getAttribute('href'))") == EXPECTED[username]
    web.check(page, f"home-{username}")
    for path in EXPECTED[username]:
        response = page.goto(web.url(path))
        assert response is not None and response.status == 200, (username, path)
    for path in REFUSED.get(username, []):
        response = page.goto(web.url(path))
        if path == "/":  # a monitor's home is their submissions
            assert page.url.endswith("/submissions")
            continue
        assert response is not None and response.status == 403, (username, path, response.status if response else None)
        assert page.locator(".error[role=alert]").count() >= 1  # the reason, in words
