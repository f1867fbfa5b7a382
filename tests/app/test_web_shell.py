"""The web app's shell in real Chromium: sign in (and back to the page asked for), the menu by role,
the language switch saved per user, the account page, and the checks every page passes."""

from __future__ import annotations

import pytest

from tests.browser import api_json


@pytest.mark.browser
def test_sign_in_returns_to_the_page_asked_for_and_the_language_switch_sticks(web):
    username, password = web.make_user("coordinator")  # a person with no saved language yet
    page = web.new_page()
    page.goto(web.url("/account"))
    assert "/login?next=%2Faccount" in page.url
    assert page.locator("h1").inner_text() == "Se connecter"  # French first
    web.check(page, "login")

    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "not-the-password-1")
    page.click("form[action='/login'] button[type=submit]")
    assert page.locator("p.error").inner_text() == "Nom d’utilisateur ou mot de passe incorrect."
    assert page.locator("input[name=username]").input_value() == username  # what was typed is kept

    page.fill("input[name=password]", password)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(web.url("/account"))
    assert page.locator("h1").inner_text() == "Mon compte"
    web.check(page, "account")

    with page.expect_navigation():
        page.click("form.lang button[value=en] >> visible=true")
    assert page.locator("h1").inner_text() == "My account"
    assert page.locator("html").get_attribute("lang") == "en"
    web.check(page, "account")

    # The choice belongs to the person, not the browser: a new French browser signing in is in English.
    other = web.new_page(lang="fr")
    other.goto(web.url("/login?next=/account"))
    other.fill("input[name=username]", username)
    other.fill("input[name=password]", password)
    other.click("form[action='/login'] button[type=submit]")
    other.wait_for_url(web.url("/account"))
    assert other.locator("h1").inner_text() == "My account"


@pytest.mark.browser
def test_a_wrong_current_password_is_shown_beside_the_field_and_nothing_changes(web):
    page = web.sign_in("monitor2")
    page.goto(web.url("/account"))
    page.fill("#f-current", "wrong-password-42")
    page.fill("#f-new", "Another-strong-passphrase-77")
    page.fill("#f-confirm", "Another-strong-passphrase-77")
    page.click("form[action='/account/password'] button[type=submit]")
    assert page.locator("#e-current").inner_text() == "Ce n’est pas votre mot de passe actuel."
    assert page.locator("#f-current").get_attribute("aria-invalid") == "true"
    assert api_json(page, "/api/v1/me")["username"] == "monitor2"  # still signed in, password unchanged
    web.check(page, "account-refused")


@pytest.mark.browser
def test_an_open_redirect_after_sign_in_is_refused(web):
    page = web.new_page()
    page.goto(web.url("/login?next=https://evil.example/x"))
    page.fill("input[name=username]", "monitor1")
    page.fill("input[name=password]", "demo-monitor1-2026")
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_load_state()
    assert page.url.startswith(web.url("/"))
    assert web.outside == []
