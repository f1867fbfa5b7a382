"""Read an XForm: form id, version, title, the field schema and the media files it references.

Pure: no FastAPI, no database. The XML comes from people we do not fully trust, so it is parsed
with lxml with DTDs, entities and network access off, and any document with a DOCTYPE is refused
(no XXE, no billion laughs).

The field schema is the shared contract every other package reads (see ``FormVersion.fields``)::

    {"path": "/asm_site_visit/visit_location", "name": "visit_location", "kind": "field",
     "type": "geopoint", "repeat": None, "required": True, "choices": None,
     "choices_from": None, "mediatype": None, "labels": {"English (en)": "GPS ..."}}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

XF = "http://www.w3.org/2002/xforms"
H = "http://www.w3.org/1999/xhtml"
JR = "http://openrosa.org/javarosa"
NS = {"xf": XF, "h": H, "jr": JR}

#: Body controls and the field type they imply when the bind says only "string".
SELECT_CONTROLS = {"select1": "select1", "select": "select", "rank": "select"}
#: Bind types some XForm authors use, as the contract's names.
TYPE_ALIASES = {"integer": "int", "long": "int", "short": "int", "float": "decimal", "double": "decimal",
                "datetime": "dateTime", "bool": "boolean"}
MEDIA_URI = re.compile(r"jr://(?:images|audio|video|file|file-csv)/([^\"'<>\s)]+)")
SEARCH_APPEARANCE = re.compile(r"search\(\s*'([^']+)'")
INSTANCE_REF = re.compile(r"instance\(\s*'([^']+)'\s*\)")
DEFAULT_LABEL_LANG = "default"


class XFormError(ValueError):
    """The document is not a usable XForm; the message says why."""


@dataclass
class XFormInfo:
    """What we keep from an XForm."""

    xml_form_id: str
    version: str | None
    title: str
    root: str
    fields: list[dict[str, Any]] = field(default_factory=list)
    media_names: list[str] = field(default_factory=list)


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def parse_xml(data: bytes | str) -> etree._Element:
    """Parse untrusted XML safely; refuse DOCTYPE/ENTITY declarations outright.

    :raises XFormError: when the XML is malformed or declares a DTD.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    head = raw[:4096].upper()
    if b"<!DOCTYPE" in head or b"<!ENTITY" in raw.upper():
        raise XFormError("XML with a DOCTYPE or entity declarations is not accepted")
    try:
        root = etree.fromstring(raw, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise XFormError(f"malformed XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise XFormError("XML with a DOCTYPE or entity declarations is not accepted")
    return root


def _text(el: etree._Element | None) -> str:
    return "".join(el.itertext()).strip() if el is not None else ""


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def itext_values(model: etree._Element, text: Callable[[etree._Element | None], str] = _text
                 ) -> dict[str, dict[str, str]]:
    """itext id -> {language: plain text value}; ``text`` reads one value (``forms.labels`` also folds
    inner whitespace)."""
    found: dict[str, dict[str, str]] = {}
    for translation in model.iterfind("xf:itext/xf:translation", NS):
        lang = translation.get("lang") or DEFAULT_LABEL_LANG
        for entry in translation.iterfind("xf:text", NS):
            values = entry.findall("xf:value", NS)
            plain = next((v for v in values if v.get("form") is None), None)
            if plain is not None:
                found.setdefault(entry.get("id", ""), {})[lang] = text(plain)
    return found


def _labels(control: etree._Element, itext: dict[str, dict[str, str]]) -> dict[str, str]:
    label = control.find("xf:label", NS)
    if label is None:
        return {}
    ref = label.get("ref") or ""
    match = re.match(r"jr:itext\('([^']+)'\)", ref)
    if match:
        return dict(itext.get(match.group(1), {}))
    text = _text(label)
    return {DEFAULT_LABEL_LANG: text} if text else {}


def _instance_src(model: etree._Element) -> dict[str, etree._Element]:
    return {inst.get("id"): inst for inst in model.iterfind("xf:instance", NS) if inst.get("id")}


def _choices(control: etree._Element, instances: dict[str, etree._Element]) -> tuple[list[str] | None, str | None]:
    """(static choice values, or the file the choices come from)."""
    items = control.findall("xf:item", NS)
    if items:
        return [_text(item.find("xf:value", NS)) for item in items], None
    itemset = control.find("xf:itemset", NS)
    if itemset is None:
        return None, None
    match = INSTANCE_REF.search(itemset.get("nodeset") or "")
    if not match or match.group(1) not in instances:
        return None, None
    instance = instances[match.group(1)]
    src = instance.get("src")
    if src:
        media = MEDIA_URI.search(src)
        return None, media.group(1) if media else src
    value_el = itemset.find("xf:value", NS)
    value_ref = (value_el.get("ref") if value_el is not None else None) or "name"
    values = []
    for item in instance.iter(f"{{{XF}}}item"):
        child = item.find(f"xf:{value_ref}", NS)
        if child is not None:
            values.append(_text(child))
    return values, None


def _body_controls(body: etree._Element | None) -> tuple[dict[str, etree._Element], set[str]]:
    """Body controls by the path they bind to, and the set of repeat paths."""
    controls: dict[str, etree._Element] = {}
    repeats: set[str] = set()
    if body is None:
        return controls, repeats
    for el in body.iter():
        tag = _local(el.tag)
        if tag == "repeat" and el.get("nodeset"):
            repeats.add(el.get("nodeset"))
        ref = el.get("ref") or el.get("nodeset")
        if ref and tag not in ("label", "hint", "value", "itemset", "item", "output", "repeat"):
            controls.setdefault(ref, el)
    return controls, repeats


def _media_names(raw: str, body: etree._Element | None) -> list[str]:
    names = dict.fromkeys(MEDIA_URI.findall(raw))
    if body is not None:
        for el in body.iter():
            match = SEARCH_APPEARANCE.search(el.get("appearance") or "")
            if match:
                names.setdefault(f"{match.group(1)}.csv", None)
    return list(names)


def parse_xform(data: bytes | str) -> XFormInfo:
    """Read an XForm document into an :class:`XFormInfo`.

    :param data: the XForm XML (bytes or text).
    :raises XFormError: when the document is not an XForm we can serve (no model, no primary
        instance, no form id) or is unsafe XML.
    """
    doc = parse_xml(data)
    if doc.tag != f"{{{H}}}html":
        raise XFormError("not an XForm: the root element must be h:html in the XHTML namespace")
    model = doc.find("h:head/xf:model", NS)
    if model is None:
        raise XFormError("not an XForm: no <model> in <h:head>")
    primary = model.find("xf:instance", NS)
    root = next((c for c in primary.iterchildren() if isinstance(c.tag, str)), None) if primary is not None else None
    if root is None:
        raise XFormError("not an XForm: the model has no primary instance")
    form_id = (root.get("id") or "").strip()
    if not form_id:
        raise XFormError("the XForm has no form id (id attribute of the primary instance root)")
    version = (root.get("version") or "").strip() or None
    title = _text(doc.find("h:head/h:title", NS)) or form_id
    body = doc.find("h:body", NS)
    itext = itext_values(model)
    instances = _instance_src(model)
    controls, repeats = _body_controls(body)
    binds = {b.get("nodeset"): b for b in model.iterfind("xf:bind", NS) if b.get("nodeset")}
    root_name = _local(root.tag)

    fields: list[dict[str, Any]] = []
    seen: set[str] = set()

    def walk(el: etree._Element, path: str, repeat: str | None) -> None:
        for child in el.iterchildren():
            if not isinstance(child.tag, str):
                continue
            name = _local(child.tag)
            child_path = f"{path}/{name}"
            if child_path == f"/{root_name}/meta":
                continue
            is_repeat = child_path in repeats or child.get(f"{{{JR}}}template") is not None
            has_children = any(isinstance(c.tag, str) for c in child.iterchildren())
            if child_path in seen:
                continue
            seen.add(child_path)
            control = controls.get(child_path)
            bind = binds.get(child_path)
            labels = _labels(control, itext) if control is not None else {}
            if is_repeat or has_children:
                kind = "repeat" if is_repeat else "group"
                fields.append({"path": child_path, "name": name, "kind": kind, "type": None, "repeat": repeat,
                               "required": False, "choices": None, "choices_from": None, "mediatype": None,
                               "labels": labels})
                walk(child, child_path, child_path if is_repeat else repeat)
                continue
            bind_type = (bind.get("type") if bind is not None else None) or "string"
            bind_type = bind_type.split(":")[-1]
            bind_type = TYPE_ALIASES.get(bind_type, bind_type)
            ftype = SELECT_CONTROLS.get(_local(control.tag) if control is not None else "") or bind_type
            choices, choices_from = (_choices(control, instances) if ftype in ("select1", "select") and control is not None
                                     else (None, None))
            fields.append({
                "path": child_path, "name": name, "kind": "field", "type": ftype, "repeat": repeat,
                "required": (bind.get("required") or "").replace(" ", "") == "true()" if bind is not None else False,
                "choices": choices, "choices_from": choices_from,
                "mediatype": control.get("mediatype") if control is not None else None,
                "labels": labels,
            })

    walk(root, f"/{root_name}", None)
    raw = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return XFormInfo(xml_form_id=form_id, version=version, title=title, root=root_name, fields=fields,
                     media_names=_media_names(raw, body))


def set_version(data: bytes | str, version: str) -> bytes:
    """The same XForm with ``version`` set on the primary instance root (for uploads without one)."""
    doc = parse_xml(data)
    root = next(c for c in doc.find("h:head/xf:model/xf:instance", NS).iterchildren() if isinstance(c.tag, str))
    root.set("version", version)
    return etree.tostring(doc, encoding="utf-8", xml_declaration=True)


def geopoint_paths(fields: list[dict[str, Any]]) -> list[str]:
    """Geopoint fields outside repeats first, then those inside repeats (location defaults)."""
    points = [f for f in fields if f["kind"] == "field" and f["type"] == "geopoint"]
    return [f["path"] for f in points if f["repeat"] is None] + [f["path"] for f in points if f["repeat"] is not None]
