"""Submission instance XML, both ways: hostile-safe parsing into the typed data dict of the
contract, and building instance XML back from such a dict.

Pure: no database, no FastAPI. Parsing happens in two steps because the field schema that
types the values depends on the form and version named inside the XML itself:

1. ``parse_instance(xml)`` parses safely (no DTD, no entities, no network, no huge trees) and
   reads the envelope: root tag, form id, version, ``meta/instanceID``, ``meta/deprecatedID``.
2. ``read_data(instance, fields)`` walks the instance along the version's field schema and
   returns the typed data dict, every geopoint (including those in repeats) and the attachment
   names that binary fields reference. Bad values raise ``Invalid`` naming the field path.

Data shape (the shared contract): keys are absolute field paths; a repeat is one key whose value
is a list of dicts keyed by the absolute paths inside it; int → int, decimal → float,
boolean → bool, select (multiple) → list[str], everything else → str. Empty elements are omitted.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from lxml import etree

from app.errors import Invalid
from sync.errors import (
    SubmissionBadInstanceId,
    SubmissionInvalidValue,
    SubmissionNoFormId,
    SubmissionUnknownField,
    SubmissionWrongRoot,
    SubmissionXmlDtd,
    SubmissionXmlMalformed,
)

if TYPE_CHECKING:
    from forms.models import FormVersion

XFORMS_NS = "http://www.w3.org/2002/xforms"
#: Used to derive a stable instanceID for XML that has none (so a resend is still a duplicate).
GENERATED_ID_NAMESPACE = uuid.UUID("5b1f3c2e-7d0a-4d8e-9a51-0d6c2f4b9e11")
MAX_ID_LENGTH = 200
_DOCTYPE_RE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_INT_RE = re.compile(r"^[+-]?\d{1,18}$")
_DATE_RE = re.compile(r"^-?\d{4}-\d{2}-\d{2}$")
_TIME_RE = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
_BOOL = {"true": True, "1": True, "false": False, "0": False}
#: A plain file name: no directories, no parent references, no control characters.
_FILE_NAME_RE = re.compile(r"^[^/\\\x00-\x1f]{1,255}$")


# -- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geopoint:
    """One geopoint answer. ``ordinal`` counts the answers of one field in document order
    (0 outside repeats; 0, 1, 2... for the instances of a repeat)."""

    field_path: str
    ordinal: int
    lat: float
    lon: float
    altitude: float | None
    accuracy: float | None


@dataclass
class Instance:
    """A safely parsed instance document and its envelope."""

    root: Any  # lxml element
    root_tag: str
    form_id: str
    version: str
    instance_id: str
    deprecated_id: str | None
    instance_id_generated: bool = False


@dataclass
class SubmissionData:
    """What ``read_data`` extracts: typed values, every geopoint, and expected attachments."""

    data: dict[str, Any]
    geopoints: list[Geopoint] = field(default_factory=list)
    #: attachment file name -> path of the (first) binary field that references it.
    attachments: dict[str, str] = field(default_factory=dict)


# -- parsing -------------------------------------------------------------------------------


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
        huge_tree=False, remove_comments=True, remove_pis=True,
    )


def _local(tag: Any) -> str | None:
    return etree.QName(tag).localname if isinstance(tag, str) else None


def parse_instance(xml: bytes) -> Instance:
    """Parse submission XML safely and read its envelope.

    DTDs and entity declarations are refused outright (XXE, billion laughs). A missing
    ``meta/instanceID`` gets a stable generated one (``uuid:`` + UUID5 of the XML bytes), so an
    identical resend still deduplicates.

    :raises BadRequest: malformed XML, a DTD, no ``id`` on the root element, a bad instanceID.
    """
    if not xml or not xml.strip():
        raise SubmissionXmlMalformed("the submission XML is empty")
    if _DOCTYPE_RE.search(xml[:4096]):
        raise SubmissionXmlDtd("submission XML must not contain a DTD (<!DOCTYPE>/<!ENTITY> declarations are refused)")
    try:
        tree = etree.fromstring(xml, _parser()).getroottree()
    except etree.XMLSyntaxError as exc:
        raise SubmissionXmlMalformed(f"the submission XML is not well-formed: {exc.msg}") from exc
    except ValueError as exc:  # e.g. unsupported encodings
        raise SubmissionXmlMalformed(f"the submission XML cannot be read: {exc}") from exc
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise SubmissionXmlDtd("submission XML must not contain a DTD (<!DOCTYPE>/<!ENTITY> declarations are refused)")
    root = tree.getroot()
    root_tag = _local(root.tag) or ""
    form_id = (root.get("id") or "").strip()
    if not form_id:
        raise SubmissionNoFormId(f"the root element <{root_tag}> has no id attribute naming the form")
    version = (root.get("version") or "").strip()

    meta = _child(root, "meta")
    instance_id = _text(_child(meta, "instanceID")) if meta is not None else None
    instance_id = instance_id or (root.get("instanceID") or "").strip() or None
    deprecated_id = _text(_child(meta, "deprecatedID")) if meta is not None else None
    generated = False
    if instance_id is None:
        instance_id = f"uuid:{uuid.uuid5(GENERATED_ID_NAMESPACE, xml.hex())}"
        generated = True
    for label, value in (("instanceID", instance_id), ("deprecatedID", deprecated_id)):
        if value is not None and (len(value) > MAX_ID_LENGTH or any(ord(c) < 32 for c in value)):
            raise SubmissionBadInstanceId(f"meta/{label} is longer than {MAX_ID_LENGTH} characters or has control characters")
    if deprecated_id == instance_id:
        raise SubmissionBadInstanceId("meta/deprecatedID equals meta/instanceID; an edit needs a new instanceID")
    return Instance(root=root, root_tag=root_tag, form_id=form_id, version=version, instance_id=instance_id,
                    deprecated_id=deprecated_id, instance_id_generated=generated)


def _child(element: Any, name: str) -> Any:
    if element is None:
        return None
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _text(element: Any) -> str | None:
    if element is None or element.text is None:
        return None
    value = element.text.strip()
    return value or None


# -- schema helpers ------------------------------------------------------------------------


@dataclass
class _Schema:
    by_path: dict[str, dict[str, Any]]
    repeats: set[str]
    root_tag: str | None


def _schema(fields: list[dict[str, Any]]) -> _Schema:
    by_path = {f["path"]: f for f in fields}
    repeats = {f["path"] for f in fields if f.get("kind") == "repeat"}
    root_tag = None
    if fields:
        parts = fields[0]["path"].split("/")
        root_tag = parts[1] if len(parts) > 1 else None
    return _Schema(by_path=by_path, repeats=repeats, root_tag=root_tag)


def enclosing_repeat(path: str, repeats: set[str]) -> str | None:
    """The nearest repeat strictly enclosing ``path`` (None at top level)."""
    best = None
    for rep in repeats:
        if path.startswith(rep + "/") and (best is None or len(rep) > len(best)):
            best = rep
    return best


def is_plain_file_name(name: str) -> bool:
    """True for a bare file name (no directories, ``..``, control characters)."""
    return bool(_FILE_NAME_RE.match(name)) and name not in (".", "..")


# -- values --------------------------------------------------------------------------------


def parse_geopoint(text: str) -> tuple[float, float, float | None, float | None] | None:
    """(lat, lon, altitude, accuracy) of an XForm geopoint string, or None when malformed/out of range
    (a negative accuracy is no accuracy: issue 9, finding 12)."""
    parts = text.split()
    if not 2 <= len(parts) <= 4:
        return None
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return None
    if not all(math.isfinite(n) for n in numbers):
        return None
    lat, lon = numbers[0], numbers[1]
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    altitude = numbers[2] if len(numbers) > 2 else None
    accuracy = numbers[3] if len(numbers) > 3 else None
    if accuracy is not None and accuracy < 0:
        return None
    return lat, lon, altitude, accuracy


def _invalid(path: str, message: str, value: str) -> Invalid:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return SubmissionInvalidValue(f"{path}: {message} (got {shown!r})",
                                  details={"field": path, "value": shown})


def _typed(spec: dict[str, Any], path: str, raw: str) -> Any:
    """Convert one answer by its bind type; raise ``Invalid`` naming the field when it is wrong."""
    kind = spec.get("type") or "string"
    text = raw.strip()
    if kind == "int":
        if not _INT_RE.match(text):
            raise _invalid(path, "not an integer", raw)
        return int(text)
    if kind == "decimal":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise _invalid(path, "not a decimal number", raw)
        return number
    if kind == "boolean":
        if text.lower() not in _BOOL:
            raise _invalid(path, "not a boolean (true/false)", raw)
        return _BOOL[text.lower()]
    if kind == "date":
        try:
            if not _DATE_RE.match(text):
                raise ValueError
            date.fromisoformat(text)
        except ValueError:
            raise _invalid(path, "not a date (YYYY-MM-DD)", raw) from None
        return text
    if kind == "dateTime":
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise _invalid(path, "not a date-time (ISO 8601)", raw) from None
        return text
    if kind == "time":
        if not _TIME_RE.match(text):
            raise _invalid(path, "not a time (HH:MM:SS)", raw)
        return text
    if kind == "geopoint":
        if parse_geopoint(text) is None:
            raise _invalid(path, "not a geopoint 'lat lon [altitude accuracy]' with lat in -90..90, lon in -180..180 "
                           "and accuracy 0 or more", raw)
        return text
    if kind in ("geotrace", "geoshape"):
        points = [p for p in text.split(";") if p.strip()]
        if not points or any(parse_geopoint(p) is None for p in points):
            raise _invalid(path, f"not a {kind}: ';'-separated geopoints with lat in -90..90, lon in -180..180 and "
                           "accuracy 0 or more", raw)
        return text
    choices = spec.get("choices")
    if kind == "select":
        values = text.split()
        if choices is not None and not spec.get("choices_from"):
            unknown = [v for v in values if v not in choices]
            if unknown:
                raise _invalid(path, f"{unknown[0]!r} is not one of the choices", raw)
        return values
    if choices is not None and not spec.get("choices_from") and kind in ("select1", "string"):
        if text not in choices:
            raise _invalid(path, "not one of the choices", raw)
        return text
    if kind == "binary":
        if not is_plain_file_name(text):
            raise _invalid(path, "attachment name must be a plain file name (no directories)", raw)
        return text
    return raw


# -- reading data --------------------------------------------------------------------------


def read_data(instance: Instance, fields: list[dict[str, Any]]) -> SubmissionData:
    """Type every answer of ``instance`` by the version's field schema.

    Elements the schema does not know (``meta``, notes of older versions...) are ignored, like
    ODK Central keeps but does not interpret them.

    :raises Invalid: the root element differs from the form's, or a value does not fit its type.
    """
    schema = _schema(fields)
    if schema.root_tag and instance.root_tag != schema.root_tag:
        raise SubmissionWrongRoot(f"the root element is <{instance.root_tag}> but this form version's instance root is "
                                  f"<{schema.root_tag}>")
    result = SubmissionData(data={})
    ordinals: dict[str, int] = {}
    root_path = "/" + instance.root_tag
    _walk(instance.root, root_path, result.data, schema, result, ordinals)
    # The form audit log (XLSForm ``audit``) is a file named in meta/audit, outside the field schema.
    audit_name = _text(_child(_child(instance.root, "meta"), "audit"))
    if audit_name and is_plain_file_name(audit_name):
        result.attachments.setdefault(audit_name, f"{root_path}/meta/audit")
    return result


def _walk(element: Any, path: str, target: dict[str, Any], schema: _Schema, result: SubmissionData,
          ordinals: dict[str, int]) -> None:
    for child in element:
        name = _local(child.tag)
        if name is None:
            continue
        child_path = f"{path}/{name}"
        spec = schema.by_path.get(child_path)
        if spec is None:
            continue
        kind = spec.get("kind", "field")
        if kind == "group":
            _walk(child, child_path, target, schema, result, ordinals)
        elif kind == "repeat":
            item: dict[str, Any] = {}
            _walk(child, child_path, item, schema, result, ordinals)
            target.setdefault(child_path, [])
            if item:
                target[child_path].append(item)
        else:
            if len(child):
                raise _invalid(child_path, "expected a value, found nested elements", etree.tostring(child).decode()[:80])
            raw = child.text
            if raw is None or not raw.strip():
                continue
            value = _typed(spec, child_path, raw)
            target[child_path] = value
            if spec.get("type") == "geopoint":
                lat, lon, alt, acc = parse_geopoint(value)  # type: ignore[misc]
                ordinal = ordinals.get(child_path, 0)
                ordinals[child_path] = ordinal + 1
                result.geopoints.append(Geopoint(child_path, ordinal, lat, lon, alt, acc))
            elif spec.get("type") == "binary":
                result.attachments.setdefault(value, child_path)
    # Repeats with no answered instance are omitted like empty elements.
    for key in [k for k, v in target.items() if isinstance(v, list) and not v and k in schema.repeats]:
        del target[key]


# -- helpers over data ---------------------------------------------------------------------


def by_name(data: dict[str, Any]) -> dict[str, Any]:
    """Map last path segment → value for the non-repeat fields (read answers by XLSForm name)."""
    out: dict[str, Any] = {}
    for path, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            continue
        out[path.rsplit("/", 1)[-1]] = value
    return out


def iter_values(data: dict[str, Any]):  # noqa: ANN201
    """Yield (path, value) for every answer, descending into repeat instances."""
    for path, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                yield from iter_values(item)
        else:
            yield path, value


# -- building ------------------------------------------------------------------------------

_ROOT_ATTRS: dict[str, tuple[str, str, str]] = {}


def form_root(xform_xml: str, cache_key: str | None = None) -> tuple[str, str, str]:
    """(root tag, form id, version) of the primary instance of an XForm."""
    if cache_key and cache_key in _ROOT_ATTRS:
        return _ROOT_ATTRS[cache_key]
    root = etree.fromstring(xform_xml.encode() if isinstance(xform_xml, str) else xform_xml, _parser())
    instance = root.find(f".//{{{XFORMS_NS}}}model/{{{XFORMS_NS}}}instance")
    if instance is None:
        instance = next((e for e in root.iter() if _local(e.tag) == "instance"), None)
    if instance is None or not len(instance):
        raise ValueError("XForm has no primary instance")
    data_root = next(e for e in instance if _local(e.tag))
    tag = _local(data_root.tag) or "data"
    form_id = data_root.get("id") or tag
    version = data_root.get("version") or ""
    if cache_key:
        _ROOT_ATTRS[cache_key] = (tag, form_id, version)
    return tag, form_id, version


def _format(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(value)
    return str(value)


def build_instance_xml(version: FormVersion, data: dict[str, Any], instance_id: str,
                       deprecated_id: str | None = None) -> bytes:
    """Instance XML for ``data`` (the contract's dict) on ``version``: the inverse of parsing.

    Keys that are not fields of the version raise ``Invalid`` naming them, so a JSON client
    learns about a typo instead of silently losing an answer.
    """
    key = getattr(version, "xform_sha256", None)
    cached = _ROOT_ATTRS.get(key) if key else None  # spares loading the XForm text (deferred on ingest)
    tag, form_id, form_version = cached or form_root(version.xform_xml, key)
    fields = version.fields or []
    schema = _schema(fields)
    root = etree.Element(tag, nsmap={"jr": "http://openrosa.org/javarosa", "orx": "http://openrosa.org/xforms"})
    root.set("id", form_id)
    if form_version:
        root.set("version", form_version)
    _build(root, "/" + tag, None, data, fields, schema)
    meta = etree.SubElement(root, "meta")
    etree.SubElement(meta, "instanceID").text = instance_id
    if deprecated_id:
        etree.SubElement(meta, "deprecatedID").text = deprecated_id
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _build(container: Any, container_path: str, repeat: str | None, values: dict[str, Any],
           fields: list[dict[str, Any]], schema: _Schema) -> None:
    known = {f["path"] for f in fields if f.get("kind") != "group" and enclosing_repeat(f["path"], schema.repeats) == repeat}
    unknown = [k for k in values if k not in known]
    if unknown:
        raise SubmissionUnknownField(f"{unknown[0]}: not a field of this form version",
                                     details={"field": unknown[0]})
    for spec in fields:
        path = spec["path"]
        if spec.get("kind") == "group" or path not in values:
            continue
        if enclosing_repeat(path, schema.repeats) != repeat:
            continue
        value = values[path]
        parent = _ensure(container, container_path, path.rsplit("/", 1)[0])
        name = path.rsplit("/", 1)[1]
        if spec.get("kind") == "repeat":
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise SubmissionInvalidValue(f"{path}: a repeat takes a list of objects",
                                             details={"field": path})
            for item in value:
                _build(etree.SubElement(parent, name), path, path, item, fields, schema)
        elif value is not None and value != "" and value != []:
            etree.SubElement(parent, name).text = _format(value)


def _ensure(container: Any, container_path: str, path: str) -> Any:
    """The element for group ``path`` under ``container`` (created when missing)."""
    if path == container_path:
        return container
    element = container
    for name in path[len(container_path) + 1:].split("/"):
        found = _child(element, name)
        element = found if found is not None else etree.SubElement(element, name)
    return element
