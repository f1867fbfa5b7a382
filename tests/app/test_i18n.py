"""Every string a page shows has its French translation (French first: the DRC's official language)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.db import PACKAGES
from app.web import i18n

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import i18n as catalogues  # noqa: E402 -- scripts/i18n.py, the tool that keeps the catalogues


@pytest.mark.parametrize("package", PACKAGES)
def test_every_page_string_of_the_package_is_translated_into_french(package):
    assert catalogues.missing(package) == [], f"run: .venv/bin/python scripts/i18n.py update {package}, then translate"


def test_gettext_follows_the_language_of_the_request():
    i18n.set_language("fr")
    assert i18n.gettext("Sign in") == "Se connecter"
    assert i18n.gettext("Welcome, %(name)s", name="Amani") == "Bienvenue, Amani"
    i18n.set_language("en")
    assert i18n.gettext("Sign in") == "Sign in"
    i18n.set_language("sw")  # not offered: French, the default
    assert i18n.current_language() == "fr"
