"""Labels for export headers and answers: the choice labels of select questions (read from the XForm by
``forms.labels``; the field schema keeps only their values) and the choice of a label language.

Pure: no database. The XForm is one a version already passed ``forms.xform.parse_xform``.
"""

from __future__ import annotations

import re

from forms.labels import form_labels

#: How a language code appears in XLSForm/XForm translation names: "Français (fr)", "French", "fr".
_LANG_WORDS = {"fr": ("fr", "french", "francais", "français"), "en": ("en", "english", "anglais")}


def pick(labels: dict[str, str] | None, language: str) -> str | None:
    """The label in ``language`` (``fr``/``en``) among a ``{translation name: text}`` map, else the
    default one, else any; None when there is none."""
    if not labels:
        return None
    words = _LANG_WORDS.get(language, (language,))
    for name, text in labels.items():
        low = name.lower().strip()
        code = re.search(r"\(([a-z]{2,3})\)\s*$", low)
        if (code and code.group(1) == language) or low in words or low.split(" ")[0] in words:
            return text
    return labels.get("default") or next(iter(labels.values()))


def choice_labels(xform_xml: str) -> dict[str, dict[str, dict[str, str]]]:
    """``{field path: {choice value: {translation name: label}}}`` of every select question whose
    choices the XForm lists (inline items or an internal secondary instance; not from a file)."""
    return {path: choices for path, choices in form_labels(xform_xml).choices.items() if choices}
