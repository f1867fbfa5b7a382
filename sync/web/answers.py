"""A submission's answers as people read them: each question and choice with its label in the reader's
language, taken from the form's own translations (the XForm's itext), repeats as numbered instances,
photos with their attachment, geopoints for the map.

Pure: an XForm text, the field schema (``FormVersion.fields``) and the submission's data in, plain
rows out; no database, no web framework.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from forms.labels import form_labels


@dataclass
class Row:
    """One line of the answers: a ``heading`` (group or repeat instance) or an ``answer``."""

    kind: str
    label: str
    level: int
    path: str
    type: str | None = None
    text: str | None = None
    #: For photos and other files: the attachment as the read API describes it.
    attachment: dict[str, Any] | None = None


@dataclass
class Answers:
    rows: list[Row] = field(default_factory=list)
    #: ``[{"lat", "lon", "label"}]`` of every geopoint answered, repeats included.
    points: list[dict[str, Any]] = field(default_factory=list)


def pick(labels: dict[str, str] | None, lang: str) -> str | None:
    """The label in ``lang`` (a language named ``fr``, ``Français (fr)`` or ``fr-CD``), else the
    default one, else any."""
    if not labels:
        return None
    for name, text in labels.items():
        code = name.rsplit("(", 1)[-1].rstrip(")").strip().lower() if "(" in name else name.lower()
        if code == lang or code.startswith(f"{lang}-") or code.startswith(f"{lang}_"):
            return text
    return labels.get("default") or next(iter(labels.values()))


def _display(ftype: str | None, value: Any, choice_labels: dict[str, dict[str, str]], lang: str) -> str:
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, list):  # select (multiple): a list of values
        return ", ".join(pick(choice_labels.get(str(v)), lang) or str(v) for v in value)
    text = str(value)
    if ftype == "select1":
        return pick(choice_labels.get(text), lang) or text
    if ftype == "select":
        return ", ".join(pick(choice_labels.get(v), lang) or v for v in text.split())
    if ftype == "geopoint":
        parts = text.split()
        if len(parts) >= 2:
            accuracy = f" (± {float(parts[3]):g} m)" if len(parts) >= 4 and _number(parts[3]) else ""
            return f"{_short(parts[0])}, {_short(parts[1])}{accuracy}"
    if ftype in ("geoshape", "geotrace"):
        return f"{len([p for p in text.split(';') if p.strip()])} points"
    return text


def _short(text: str) -> str:
    """A coordinate to 6 decimals (about 10 cm), as written when it cannot be read as a number."""
    return f"{float(text):.6f}".rstrip("0").rstrip(".") if _number(text) else text


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def build(fields: list[dict[str, Any]], xform_xml: str, data: dict[str, Any] | None,
          attachments: list[dict[str, Any]], lang: str, *, instance_label: str = "#%(n)s",
          unlabelled: dict[str, str] | None = None) -> Answers:
    """The rows of ``data`` in the order of the form, labelled in ``lang``; unanswered questions left out.

    :param attachments: the read API's ``attachments`` of the submission (matched to answers by file name).
    :param instance_label: how a repeat instance is numbered (``%(n)s``), already translated.
    :param unlabelled: names for questions the form gives no label (``start``, ``end``: metadata), translated.
    """
    labels = form_labels(xform_xml)
    by_name = {a["name"]: a for a in attachments}
    containers = {f["path"] for f in fields if f.get("kind") in ("group", "repeat")}

    def parent_of(path: str) -> str | None:
        best = None
        for c in containers:
            if path.startswith(c + "/") and (best is None or len(c) > len(best)):
                best = c
        return best

    children: dict[str | None, list[dict[str, Any]]] = {}
    for f in fields:
        children.setdefault(parent_of(f["path"]), []).append(f)
    out = Answers()

    def label_of(f: dict[str, Any]) -> str:
        name = f.get("name") or f["path"].rsplit("/", 1)[-1]
        return (pick(labels.questions.get(f["path"]), lang) or pick(f.get("labels"), lang)
                or (unlabelled or {}).get(name) or name)

    def walk(parent: str | None, values: dict[str, Any], level: int, where: str) -> list[Row]:
        rows: list[Row] = []
        for f in children.get(parent, []):
            kind, path = f.get("kind"), f["path"]
            if kind == "group":
                inner = walk(path, values, level + 1, where)
                if inner:
                    rows.append(Row(kind="heading", label=label_of(f), level=level, path=path))
                    rows.extend(inner)
                continue
            if kind == "repeat":
                instances = values.get(path)
                if not isinstance(instances, list):
                    continue
                for n, instance in enumerate(instances, start=1):
                    if not isinstance(instance, dict):
                        continue
                    inner = walk(path, instance, level + 1, f"{label_of(f)} {instance_label % {'n': n}}")
                    if inner:
                        rows.append(Row(kind="heading", level=level, path=path,
                                        label=f"{label_of(f)} {instance_label % {'n': n}}"))
                        rows.extend(inner)
                continue
            value = values.get(path)
            ftype = f.get("type")
            if value is None or value == "" or value == [] or isinstance(value, dict) \
                    or (isinstance(value, list) and ftype != "select"):
                continue
            label = label_of(f)
            row = Row(kind="answer", label=label, level=level, path=path, type=ftype,
                      text=_display(ftype, value, labels.choices.get(path, {}), lang))
            if ftype in ("binary", "image", "audio", "video", "file") or str(value) in by_name:
                row.attachment = by_name.get(str(value))
            if ftype == "geopoint":
                parts = str(value).split()
                if len(parts) >= 2 and _number(parts[0]) and _number(parts[1]):
                    out.points.append({"lat": float(parts[0]), "lon": float(parts[1]),
                                       "label": f"{where} · {label}" if where else label})
            rows.append(row)
        return rows

    out.rows = walk(None, data or {}, 0, "")
    return out
