"""Labels of an XForm's questions and choices, per translation, read from the XForm itself (its itext,
inline items and internal secondary instances): the field schema keeps names and values only.

Pure: an XForm text in, ``FormLabels`` out. Used to show answers (sync's submission page) and to head and
fill exports (reports).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from lxml import etree

from forms.xform import NS, XF, itext_values, parse_xml

ITEXT_REF = re.compile(r"jr:itext\(\s*'?([^')]+)'?\s*\)")
INSTANCE_REF = re.compile(r"instance\(\s*'([^']+)'\s*\)")


@dataclass(frozen=True)
class FormLabels:
    """Question labels ``{path: {language: text}}`` and choice labels ``{path: {value: {language: text}}}``."""

    questions: dict[str, dict[str, str]]
    choices: dict[str, dict[str, dict[str, str]]]


def _text(el: etree._Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def _label(label: etree._Element | None, itext: dict[str, dict[str, str]], item: etree._Element | None = None
           ) -> dict[str, str]:
    if label is None:
        return {}
    ref = label.get("ref") or ""
    match = ITEXT_REF.match(ref)
    if match:
        key = match.group(1)
        if item is not None and not ref.strip().startswith("jr:itext('"):  # jr:itext(itextId): a field of the item
            key = _text(item.find(f"xf:{key}", NS))
        return dict(itext.get(key, {}))
    if ref and item is not None:
        text = _text(item.find(f"xf:{ref}", NS))
        return {"default": text} if text else {}
    text = _text(label)
    return {"default": text} if text else {}


def _choice_labels(control: etree._Element, itext: dict[str, dict[str, str]],
                   instances: dict[str, etree._Element]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in control.iterfind("xf:item", NS):
        out[_text(item.find("xf:value", NS))] = _label(item.find("xf:label", NS), itext)
    itemset = control.find("xf:itemset", NS)
    if itemset is None:
        return out
    match = INSTANCE_REF.search(itemset.get("nodeset") or "")
    instance = instances.get(match.group(1)) if match else None
    if instance is None or instance.get("src"):
        return out
    value_el = itemset.find("xf:value", NS)
    value_ref = (value_el.get("ref") if value_el is not None else None) or "name"
    for item in instance.iter(f"{{{XF}}}item"):
        value = item.find(f"xf:{value_ref}", NS)
        if value is not None:
            out[_text(value)] = _label(itemset.find("xf:label", NS), itext, item)
    return out


@lru_cache(maxsize=32)
def form_labels(xform_xml: str) -> FormLabels:
    """The labels of an XForm's questions and choices, per language (``"Français (fr)"``, ``"default"``)."""
    doc = parse_xml(xform_xml)
    model = doc.find("h:head/xf:model", NS)
    body = doc.find("h:body", NS)
    if model is None or body is None:
        return FormLabels(questions={}, choices={})
    itext = itext_values(model, text=_text)
    instances = {i.get("id"): i for i in model.iterfind("xf:instance", NS) if i.get("id")}
    questions: dict[str, dict[str, str]] = {}
    choices: dict[str, dict[str, dict[str, str]]] = {}
    for el in body.iter():
        if not isinstance(el.tag, str):
            continue
        ref = el.get("ref") or el.get("nodeset")
        local = etree.QName(el.tag).localname
        if not ref or local in ("label", "hint", "value", "itemset", "item", "output"):
            continue
        labels = _label(el.find("xf:label", NS), itext)
        if local == "repeat" and not labels:
            parent = el.getparent()
            labels = _label(parent.find("xf:label", NS), itext) if parent is not None else {}
        if labels:
            questions.setdefault(ref, labels)
        if local in ("select1", "select", "rank"):
            choices[ref] = _choice_labels(el, itext, instances)
    return FormLabels(questions=questions, choices=choices)
