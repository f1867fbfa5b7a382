"""Languages of the web pages: French first (the DRC's official language), English too.

Every string a page shows goes through gettext. Message ids are English; each package keeps its own
French catalogue in ``<package>/translations/fr/LC_MESSAGES/*.po`` (``scripts/i18n.py``
extracts new strings into it), and they are merged here at start-up, straight from the ``.po`` files
so there is no compile step to forget. English needs no catalogue: the message ids are English.

The language of the request being rendered is kept in a context variable, set by ``app.web.render``
before a template renders, so ``gettext`` in Python code (a flash message, a field error) and
``{{ _("...") }}`` in templates use the same choice.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from functools import cache
from gettext import NullTranslations

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from app.db import PACKAGES, ROOT

LANGUAGES = {"fr": "Français", "en": "English"}
DEFAULT_LANGUAGE = "fr"
LANGUAGE_COOKIE = "asmfield_lang"

_current: ContextVar[str] = ContextVar("asmfield_language", default=DEFAULT_LANGUAGE)


def catalogue_paths(language: str) -> list:
    """Every ``.po`` file of every package for ``language`` (a package may split its catalogue by page)."""
    paths = []
    for package in PACKAGES:
        folder = ROOT / package / ("web" if package == "app" else "") / "translations" / language / "LC_MESSAGES"
        paths += sorted(folder.glob("*.po")) if folder.is_dir() else []
    return paths


@cache
def translations(language: str) -> NullTranslations:
    """Every package's catalogue for ``language`` merged into one (``NullTranslations`` for English)."""
    merged: NullTranslations | None = None
    for path in catalogue_paths(language):
        with path.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        buffer = io.BytesIO()
        write_mo(buffer, catalog)
        buffer.seek(0)
        loaded = Translations(buffer)
        if merged is None:
            merged = loaded
        else:
            merged.merge(loaded)
    return merged or NullTranslations()


def normalise(language: str | None) -> str | None:
    code = (language or "").strip().lower()[:2]
    return code if code in LANGUAGES else None


def set_language(language: str) -> None:
    _current.set(normalise(language) or DEFAULT_LANGUAGE)


def current_language() -> str:
    return _current.get()


def gettext(message: str, **values: object) -> str:
    """``message`` in the current language, with ``%(name)s`` placeholders filled from ``values``."""
    text = translations(current_language()).gettext(message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    text = translations(current_language()).ngettext(singular, plural, n)
    return text % {"num": n, **values}


_ = gettext


def N_(message: str) -> str:  # noqa: N802 -- the gettext convention for "mark for extraction only"
    """Mark a message id for the catalogue without translating it here (it is translated when shown)."""
    return message
