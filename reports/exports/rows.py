"""The rows of an export: who may export what (``export_plan``), the tables and their columns, and
the rows themselves, read in id order a chunk at a time (``iter_records``, ``iter_rows``).

Tables are shaped like ODK Central's CSV zip: the main table (one row per submission) and one per
repeat group, joined by keys: ``_uuid`` is the instanceID of a submission, or
``<parent _uuid>/<repeat>[<n>]`` for a repeat instance; a repeat row's ``_parent_uuid`` is its
parent's ``_uuid`` and ``_index`` its 1-based position. Columns are the union of the fields of
the versions exported, in form order (the newest version's order; a field only older versions
had comes after the field it followed there).

Who may export (design.md §6, domain.md §3.5):

* site-visit and general forms: admins and coordinators every submission, monitors their own,
  caseworkers none;
* case forms only as the cases capability allows: caseworkers the records of their own
  organisation's cases (every column); coordinators the records of cases that consented to
  statistics (``consent_reporting``), **without** the identifying fields (``cases.access.IDENTIFYING_NAMES``),
  photos and locations — enough for the KPIs, never a child's identity; admins and monitors none;
* submissions of other forms that case management took in (``Hooks.is_restricted_data``) are
  left out for everyone.

A plan holds plain values only (no ORM object, no session), so a route can make it in the
request's transaction and stream its rows from another session, and a background job can keep it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
from sqlmodel import Session

from app import audit
from app.events import Hooks
from app.identity import Actor, Role
from app.models import Device, User
from app.timeutil import utcnow
from cases.access import IDENTIFYING_NAMES
from forms.models import CASE_FORM_KINDS
from geodata.importers import canonical_province
from geodata.stages import effective_stage
from reports.errors import (
    ExportBadParam,
    ExportCaseData,
    ExportForbidden,
    ExportUnknownSite,
    ExportUnknownVersion,
)
from reports.exports import labels, queries
from reports.exports.spec import ExportSpec
from sync.form_lookup import get_form

#: Rows read per query (keyset paging): memory stays flat whatever the number of submissions.
CHUNK_ROWS = 1000
GEOPOINT_PARTS = ("latitude", "longitude", "altitude", "accuracy")
GEO_TYPES = ("geopoint", "geotrace", "geoshape")
#: The main table's meta columns, before and after the fields.
META_FIRST = ("_submitted_at",)
META_LAST = ("_site_code", "_site_name", "_site_stage", "_submitter", "_device", "_review_state", "_version", "_uuid")
#: The key columns ending each repeat table.
REPEAT_KEYS = ("_index", "_parent_uuid", "_uuid")
#: Separator of labels of a select_multiple answer (values keep XForm's space).
LABEL_SEPARATOR = "; "


@dataclass(frozen=True)
class Column:
    """One column: a field (``path``; ``part`` a geopoint component or a choice of a split
    select_multiple) or a meta/key column (``meta``)."""

    name: str
    header: str
    path: str | None = None
    type: str | None = None
    part: str | None = None
    meta: str | None = None


@dataclass(frozen=True)
class Table:
    """The main table (``path`` None) or a repeat group's table (``parent``: the enclosing repeat's
    path, None under the main table)."""

    name: str
    path: str | None
    parent: str | None
    columns: tuple[Column, ...]

    @property
    def header(self) -> list[str]:
        return [c.header for c in self.columns]


@dataclass(frozen=True)
class ExportPlan:
    """What ``iter_records`` reads and how it shapes rows; plain values only."""

    spec: ExportSpec
    form_id: int
    xml_form_id: str
    title: str
    kind: str
    #: The form versions exported (None: every version).
    version_ids: tuple[int, ...] | None
    #: version id → version string.
    versions: Mapping[int, str]
    #: The union field schema of the versions exported (``forms.xform`` contract), identity fields dropped.
    fields: tuple[dict[str, Any], ...]
    tables: tuple[Table, ...]
    #: field path → choice value → label in the export's language.
    choice_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Field paths left out of this caller's export (identifying fields of case forms).
    dropped: tuple[str, ...] = ()
    #: Only this user's submissions (monitors).
    submitter_id: int | None = None
    #: Case-form rows: "organisation" (of ``organisation_id``'s cases), "consenting" (cases that
    #: consented to statistics), "none_linked" (other forms: no record case management took in), None (all).
    case_rows: str | None = None
    organisation_id: int | None = None
    site_id: int | None = None
    #: The stored province name the filter names.
    province: str | None = None
    #: Case forms get a ``_case`` column (the pseudonymous case code).
    case_codes: bool = False

    @property
    def main(self) -> Table:
        return self.tables[0]


# -- who may export what ---------------------------------------------------------------------


def _scope(session: Session, actor: Actor, hooks: Hooks, form: Any) -> dict[str, Any]:
    """The row scope and the field rule of ``actor`` on ``form`` (module docstring); refusals raise."""
    if form.kind in CASE_FORM_KINDS:
        if actor.role == Role.caseworker:
            return {"case_rows": "organisation", "organisation_id": actor.organisation_id, "drop_identity": False}
        if actor.role == Role.coordinator:
            return {"case_rows": "consenting", "drop_identity": True}
        raise ExportCaseData(f"case form {form.xml_form_id!r} is exported only by the owning organisation's "
                             "caseworkers (their cases) and the coordinators (without identifying fields)",
                             details={"form": form.xml_form_id})
    if actor.role == Role.caseworker:
        raise ExportForbidden("caseworkers do not export site-visit data", details={"form": form.xml_form_id})
    scope: dict[str, Any] = {"drop_identity": False}
    if actor.role not in (Role.admin, Role.coordinator):
        scope["submitter_id"] = actor.user.id
    if hooks.is_restricted_data(session, form=form):
        scope["case_rows"] = "none_linked"
    return scope


def _identifying(f: dict[str, Any]) -> bool:
    """A case-form field no coordinator export carries: identity, photos and other files, locations."""
    return f.get("name") in IDENTIFYING_NAMES or f.get("type") == "binary" or f.get("type") in GEO_TYPES


# -- columns -----------------------------------------------------------------------------------


def merge_fields(schemas: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The union of field schemas, newest first in ``schemas``, in the newest one's order; a field
    only an older schema has comes after the field it followed there."""
    merged: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for schema in schemas:
        previous: str | None = None
        for f in schema:
            if f["path"] not in index:
                at = index[previous] + 1 if previous is not None else len(merged)
                merged.insert(at, f)
                index = {g["path"]: i for i, g in enumerate(merged)}
            previous = f["path"]
    return merged


def _relative(path: str, root: str) -> str:
    return path[len(root) + 1:].replace("/", "-") if path.startswith(root + "/") else path.strip("/").replace("/", "-")


def _unique(columns: list[Column]) -> tuple[Column, ...]:
    """Headers made unique (labels can repeat): a repeated header gets its column's name appended."""
    seen: dict[str, int] = {}
    for c in columns:
        seen[c.header] = seen.get(c.header, 0) + 1
    out = []
    for c in columns:
        if seen[c.header] > 1 and c.header != c.name:
            c = Column(name=c.name, header=f"{c.header} [{c.name}]", path=c.path, type=c.type, part=c.part, meta=c.meta)
        out.append(c)
    return tuple(out)


def _field_columns(f: dict[str, Any], root: str, spec: ExportSpec, choice_labels: Mapping[str, Mapping[str, str]]
                   ) -> list[Column]:
    name = _relative(f["path"], root)
    by_labels = spec.options.headers == "labels"
    label = (labels.pick(f.get("labels"), spec.options.language) or f["name"]) if by_labels else name
    if f.get("type") == "geopoint":
        return [Column(name=f"{name}-{part}", header=f"{label} ({part})" if by_labels else f"{name}-{part}",
                       path=f["path"], type="geopoint", part=part) for part in GEOPOINT_PARTS]
    columns = [Column(name=name, header=label, path=f["path"], type=f.get("type"))]
    if spec.options.split_multiple and f.get("type") == "select":
        values = list(choice_labels.get(f["path"], {})) or list(f.get("choices") or [])
        for value in values:
            header = (f"{label}/{choice_labels.get(f['path'], {}).get(value) or value}" if by_labels
                      else f"{name}/{value}")
            columns.append(Column(name=f"{name}/{value}", header=header, path=f["path"], type="select", part=value))
    return columns


def build_tables(xml_form_id: str, root: str, fields: list[dict[str, Any]], spec: ExportSpec,
                 choice_labels: Mapping[str, Mapping[str, str]], *, case_codes: bool = False) -> tuple[Table, ...]:
    """The main table and one table per repeat group, with their columns in form order."""
    meta_last = list(META_LAST)
    if case_codes:
        meta_last.insert(0, "_case")
    if spec.options.include_edits:
        meta_last.append("_superseded_by")
    main_fields = [c for f in fields if f["kind"] == "field" and f["repeat"] is None
                   for c in _field_columns(f, root, spec, choice_labels)]
    tables = [Table(name=xml_form_id, path=None, parent=None, columns=_unique(
        [Column(name=m, header=m, meta=m) for m in META_FIRST] + main_fields
        + [Column(name=m, header=m, meta=m) for m in meta_last]))]
    for repeat in (f for f in fields if f["kind"] == "repeat"):
        columns = [c for f in fields if f["kind"] == "field" and f["repeat"] == repeat["path"]
                   for c in _field_columns(f, root, spec, choice_labels)]
        tables.append(Table(name=_relative(repeat["path"], root), path=repeat["path"], parent=repeat["repeat"],
                            columns=_unique(columns + [Column(name=k, header=k, meta=k) for k in REPEAT_KEYS])))
    return tuple(tables)


# -- the plan ------------------------------------------------------------------------------------


def _version_range(spec: ExportSpec, versions: list[Any]) -> list[Any]:
    names = [v.version for v in versions]
    lo, hi = 0, len(versions) - 1
    for param, value in (("min_version", spec.filters.min_version), ("max_version", spec.filters.max_version)):
        if value is None:
            continue
        if value not in names:
            raise ExportUnknownVersion(f"{param}: form {spec.xml_form_id!r} has no version {value!r} "
                                       f"(its versions: {', '.join(names)})", details={"field": param})
        if param == "min_version":
            lo = names.index(value)
        else:
            hi = names.index(value)
    if lo > hi:
        raise ExportBadParam("min_version: was uploaded after max_version", details={"field": "min_version"})
    return versions[lo:hi + 1]


def export_plan(session: Session, actor: Actor, hooks: Hooks, spec: ExportSpec, *, audited: bool = True) -> ExportPlan:
    """Check that ``actor`` may export ``spec`` and plan it: the form, its versions in range, the
    union of their fields (less the fields this caller may not see) and the tables.

    Audited (``export.create``, with the spec and the fields left out) unless ``audited=False``
    (e.g. to check a spec before queueing it, when the run audits).

    :raises: ``form.not_found`` (404), ``export.forbidden``/``export.case_data`` (403),
        ``export.unknown_version``/``export.unknown_site``/``export.bad_param`` (422).
    """
    form = get_form(session, spec.xml_form_id)
    scope = _scope(session, actor, hooks, form)
    all_versions = queries.versions_of(session, form.id)
    chosen = _version_range(spec, all_versions)
    ranged = spec.filters.min_version is not None or spec.filters.max_version is not None
    fields = merge_fields([list(v.fields or []) for v in reversed(chosen)])
    dropped = tuple(f["path"] for f in fields if scope["drop_identity"] and f["kind"] == "field" and _identifying(f))
    fields = [f for f in fields if f["path"] not in dropped]
    choice_labels: dict[str, dict[str, str]] = {}
    for v in chosen:  # oldest first: a newer version's labels win
        for path, choices in labels.choice_labels(v.xform_xml).items():
            picked = choice_labels.setdefault(path, {})
            for value, names in choices.items():
                picked[value] = labels.pick(names, spec.options.language) or value
    root = "/" + (fields[0]["path"].split("/")[1] if fields else form.xml_form_id)
    site_id = None
    if spec.filters.site is not None:
        site_id = queries.site_id_by_code(session, spec.filters.site)
        if site_id is None:
            raise ExportUnknownSite(f"site: no site has the code {spec.filters.site!r}", details={"field": "site"})
    province = None
    if spec.filters.province is not None:
        province = canonical_province(spec.filters.province)
        if not queries.province_has_sites(session, province, spec.filters.province):
            raise ExportBadParam(f"province: no site is in a province named {spec.filters.province!r}",
                                 details={"field": "province"})
    case_form = form.kind in CASE_FORM_KINDS
    plan = ExportPlan(
        spec=spec, form_id=form.id, xml_form_id=form.xml_form_id, title=form.title, kind=form.kind,
        version_ids=tuple(v.id for v in chosen) if ranged else None,
        versions={v.id: v.version for v in all_versions}, fields=tuple(fields),
        tables=build_tables(form.xml_form_id, root, fields, spec, choice_labels, case_codes=case_form),
        choice_labels=choice_labels, dropped=dropped, submitter_id=scope.get("submitter_id"),
        case_rows=scope.get("case_rows"), organisation_id=scope.get("organisation_id"), site_id=site_id,
        province=province, case_codes=case_form)
    if audited:
        audit.record(session, "export.create", actor=actor, object_type="form", object_id=form.xml_form_id,
                     spec=spec.as_params(), dropped=list(dropped))
    return plan


def count(session: Session, plan: ExportPlan) -> int:
    """How many main-table rows (submissions, and superseded versions with ``include_edits``) the export has."""
    return queries.count(session, plan)


# -- rows ------------------------------------------------------------------------------------------


#: The order of the values ``_main_meta`` gives (a main table's meta columns pick theirs by position).
MAIN_META = ("_submitted_at", "_site_code", "_site_name", "_site_stage", "_submitter", "_device", "_review_state",
             "_version", "_uuid", "_superseded_by", "_case")


class _Shape:
    """Turns a submission's data (or a repeat instance) into a table's row: one dict lookup per
    column, then the few columns that need converting, each kind in one loop without a call per
    cell (choices, geopoints split once for their four parts, split flags), then the meta columns
    (``meta``: values in ``order``)."""

    def __init__(self, plan: ExportPlan, table: Table, order: tuple[str, ...]) -> None:
        labelled = plan.spec.options.choices == "labels"
        self.paths = [None if c.meta else c.path for c in table.columns]
        #: select_multiple columns: (index, labels or None); select_one columns (labels only): (index, labels).
        self.multiple: list[tuple[int, Mapping[str, str] | None]] = []
        self.single: list[tuple[int, Mapping[str, str]]] = []
        #: split select_multiple flags: (index, choice).
        self.flags: list[tuple[int, str]] = []
        #: per geopoint field: (index, part number) of its columns.
        points: dict[str, list[tuple[int, int]]] = {}
        for i, c in enumerate(table.columns):
            if c.meta:
                continue
            names = plan.choice_labels.get(c.path or "", {})
            if c.type == "geopoint" and c.part is not None:
                points.setdefault(c.path or "", []).append((i, GEOPOINT_PARTS.index(c.part)))
            elif c.type == "select" and c.part is not None:
                self.flags.append((i, c.part))
            elif c.type == "select":
                self.multiple.append((i, names if labelled else None))
            elif c.type == "select1" and labelled:
                self.single.append((i, names))
        self.points = [(parts[0][0], parts) for parts in points.values()]
        self.meta = [(i, order.index(c.meta)) for i, c in enumerate(table.columns) if c.meta]

    def row(self, data: dict[str, Any], meta: tuple[Any, ...]) -> list[Any]:
        get = data.get
        row = [get(p) for p in self.paths]
        for i, names in self.multiple:
            value = row[i]
            if value.__class__ is list:
                row[i] = " ".join(value) if names is None else LABEL_SEPARATOR.join([names.get(x, x) for x in value])
        for i, names in self.single:
            value = row[i]
            if value.__class__ is str:
                row[i] = names.get(value, value)
        for i, choice in self.flags:
            value = row[i]
            if value is not None:
                row[i] = int(choice in (value if value.__class__ is list else str(value).split()))
        for first, parts in self.points:
            value = row[first]
            pieces = value.split() if value.__class__ is str else ()
            for i, k in parts:
                try:  # "lat lon [altitude accuracy]", validated when the submission was stored
                    row[i] = float(pieces[k])
                except (IndexError, ValueError):
                    row[i] = None
        for i, at in self.meta:
            row[i] = meta[at]
        return row


@dataclass
class _Facts:
    """Per-chunk lookups: names of submitters and devices (kept across chunks), sites (code, name,
    stage as of today) and cases."""

    users: dict[int, str] = field(default_factory=dict)
    devices: dict[int, str] = field(default_factory=dict)
    sites: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    cases: dict[str, str] = field(default_factory=dict)


_NO_SITE = (None, None, None)


def _load_facts(session: Session, plan: ExportPlan, rows: list[Any], facts: _Facts, today: date) -> None:
    facts.users.update(queries.names(session, User, {r.submitted_by_user_id for r in rows} - set(facts.users)))
    facts.devices.update(queries.names(session, Device, {r.device_id for r in rows} - set(facts.devices)))
    facts.sites = {i: (s.code, s.name, effective_stage(s.stage, s.stage_status, s.last_visit_on, today)[0])
                   for i, s in queries.sites(session, {r.site_id for r in rows}).items()}
    facts.cases = queries.case_codes(session, {r.root_instance_id for r in rows}) if plan.case_codes else {}


def _main_meta(plan: ExportPlan, row: Any, facts: _Facts) -> tuple[Any, ...]:
    """The main table's meta values of a submission, in ``MAIN_META`` order."""
    site = facts.sites.get(row.site_id, _NO_SITE) if row.site_id is not None else _NO_SITE
    return (row.received_at, site[0], site[1], site[2], facts.users.get(row.submitted_by_user_id),
            facts.devices.get(row.device_id) or row.client_device_id, row.review_state,
            plan.versions.get(row.form_version_id), row.instance_id, row.superseded_by,
            facts.cases.get(row.root_instance_id))


def _repeat_rows(tables: list[tuple[Table, _Shape]], container: dict[str, Any], parent: str | None,
                 parent_uuid: str) -> Iterator[tuple[Table, list[Any]]]:
    """The rows of every repeat table under ``container`` (a submission's data or a repeat
    instance), depth first, each instance's row before its own repeats' rows."""
    for table, shape in tables:
        if table.parent != parent:
            continue
        items = container.get(table.path or "")
        if not isinstance(items, list):
            continue
        repeat_name = (table.path or "").rsplit("/", 1)[-1]
        for i, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                continue
            uuid = f"{parent_uuid}/{repeat_name}[{i}]"
            yield table, shape.row(item, (i, parent_uuid, uuid))
            yield from _repeat_rows(tables, item, table.path, uuid)


def _decode(text: str | None) -> dict[str, Any]:
    """A submission's stored data from its JSON text (the standard ``json`` for what orjson refuses:
    integers past 64 bits)."""
    if not text:
        return {}
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def iter_records(session: Session, plan: ExportPlan, *, tables: Iterable[Table] | None = None,
                 progress: Callable[[int], None] | None = None, chunk_rows: int = CHUNK_ROWS
                 ) -> Iterator[tuple[Table, list[Any]]]:
    """Every row of ``tables`` (default: all of the plan's), as ``(table, values)``: a submission's
    main row, then its repeat rows; submissions in id order, read ``chunk_rows`` at a time.

    Values are Python values: str, int, float, bool, None, and the ``_submitted_at`` datetime (UTC).
    ``progress(n)`` is called after each chunk with the number of submissions read so far.
    """
    wanted = list(plan.tables if tables is None else tables)
    with_main = plan.main in wanted
    main_shape = _Shape(plan, plan.main, MAIN_META)
    repeats = [(t, _Shape(plan, t, REPEAT_KEYS)) for t in wanted if t.path is not None]
    facts = _Facts()
    today = utcnow().date()
    after, done = 0, 0
    while True:
        rows = queries.chunk(session, plan, after=after, size=chunk_rows)
        if not rows:
            break
        if with_main:
            _load_facts(session, plan, rows, facts, today)
        for row in rows:
            data = _decode(row.data)
            if with_main:
                yield plan.main, main_shape.row(data, _main_meta(plan, row, facts))
            if repeats:
                yield from _repeat_rows(repeats, data, None, row.instance_id)
        after = rows[-1].id
        done += len(rows)
        if progress is not None:
            progress(done)
        if len(rows) < chunk_rows:
            break


def iter_rows(session: Session, plan: ExportPlan, table: Table, *, progress: Callable[[int], None] | None = None
              ) -> Iterator[list[Any]]:
    """The rows of one table (``iter_records`` restricted to it).

    A repeat table nested in another repeat needs its ancestors' tables read too (its rows are
    found through them); only ``table``'s rows are yielded.
    """
    chain = [table]
    while chain[-1].parent is not None:
        chain.append(next(t for t in plan.tables if t.path == chain[-1].parent))
    for found, values in iter_records(session, plan, tables=chain, progress=progress):
        if found is table:
            yield values
