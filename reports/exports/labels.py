"""Labels of an XForm for export headers and answers: the choice labels of select questions (the
field schema keeps only their values) and the choice of a label language.

Pure: no database. The XForm is one a version already passed ``forms.xform.parse_xform``.
"""

from __future__ import annotations

import re
from typing import Any

from forms.xform import NS, XF, parse_xml

#: How a language code appears in XLSForm/XForm translation names: "Français (fr)", "French", "fr".
_LANG_WORDS = {"fr": ("fr", "french", "francais", "français"), "en": ("en", "english", "anglais")}
_ITEXT_CALL = re.compile(r"jr:itext\(\s*'?([^')]+)'?\s*\)")
_INSTANCE = re.compile(r"instance\(\s*'([^']+)'\s*\)")


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


def _plain(el: Any) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def _itext(model: Any) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for translation in model.iterfind("xf:itext/xf:translation", NS):
        lang = translation.get("lang") or "default"
        for text in translation.iterfind("xf:text", NS):
            values = text.findall("xf:value", NS)
            plain = next((v for v in values if v.get("form") is None), None)
            if plain is not None:
                found.setdefault(text.get("id", ""), {})[lang] = _plain(plain)
    return found


def _label_of(label: Any, itext: dict[str, dict[str, str]], item: Any = None) -> dict[str, str]:
    if label is None:
        return {}
    ref = label.get("ref") or ""
    call = _ITEXT_CALL.match(ref)
    if call:
        key = call.group(1)
        if item is not None and not ref.replace(" ", "").startswith("jr:itext('"):
            key = _plain(item.find(f"xf:{key}", NS))  # jr:itext(itextId): the id is a child of the item
        return dict(itext.get(key, {}))
    if ref and item is not None:
        text = _plain(item.find(f"xf:{ref}", NS))
        return {"default": text} if text else {}
    text = _plain(label)
    return {"default": text} if text else {}


def choice_labels(xform_xml: str) -> dict[str, dict[str, dict[str, str]]]:
    """``{field path: {choice value: {translation name: label}}}`` of every select question whose
    choices the XForm lists (inline items or an internal secondary instance; not from a file)."""
    doc = parse_xml(xform_xml)
    model = doc.find("h:head/xf:model", NS)
    body = doc.find("h:body", NS)
    if model is None or body is None:
        return {}
    itext = _itext(model)
    instances = {inst.get("id"): inst for inst in model.iterfind("xf:instance", NS) if inst.get("id")}
    out: dict[str, dict[str, dict[str, str]]] = {}
    for control in body.iter(f"{{{XF}}}select1", f"{{{XF}}}select", f"{{{XF}}}rank"):
        ref = control.get("ref") or control.get("nodeset")
        if not ref:
            continue
        choices: dict[str, dict[str, str]] = {}
        for item in control.iterfind("xf:item", NS):
            choices[_plain(item.find("xf:value", NS))] = _label_of(item.find("xf:label", NS), itext)
        itemset = control.find("xf:itemset", NS)
        if itemset is not None:
            match = _INSTANCE.search(itemset.get("nodeset") or "")
            instance = instances.get(match.group(1)) if match else None
            if instance is not None and not instance.get("src"):
                value_el = itemset.find("xf:value", NS)
                value_ref = (value_el.get("ref") if value_el is not None else None) or "name"
                label = itemset.find("xf:label", NS)
                for item in instance.iter(f"{{{XF}}}item"):
                    value = _plain(item.find(f"xf:{value_ref}", NS))
                    choices[value] = _label_of(label, itext, item)
        if choices:
            out[ref] = choices
    return out
