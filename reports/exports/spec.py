"""What an export asks for: the form, the format, the filters of the submissions page and the
table options, as one frozen value (``ExportSpec``), parsed from query parameters (``parse_spec``)
and written back to them (``ExportSpec.as_params``, e.g. to store a background job's spec).

Pure: no database. What needs the database (the form exists, the versions named exist, who may
export) is checked by ``reports.exports.rows.export_plan``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal

from app.timeutil import as_utc
from reports.errors import ExportBadParam

FormatName = Literal["csv", "xlsx", "geojson", "gpkg", "media"]
FORMAT_NAMES: tuple[str, ...] = ("csv", "xlsx", "geojson", "gpkg", "media")
#: Submission.review_state values (sync.review.STATES).
REVIEW_STATES = ("received", "needs_review", "approved", "rejected")
HEADERS = ("names", "labels")
CHOICES = ("values", "labels")
LANGUAGES = ("fr", "en")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
#: Every query parameter ``parse_spec`` reads; anything else is refused (a typo must not export everything).
PARAMS = ("form", "format", "since", "until", "review_state", "site", "province", "min_version", "max_version",
          "headers", "choices", "language", "split_multiple", "include_edits", "geometry_field")


@dataclass(frozen=True)
class Filters:
    """Which submissions: those of the submissions page's filters (all optional, combined with AND).

    :param since: / :param until: on the time the server received a submission (UTC); a bare date
        for ``until`` covers the whole day.
    :param site: a site code (submissions mapped onto that site).
    :param province: a province name or ISO code (submissions mapped onto a site in it).
    :param min_version: / :param max_version: form versions, in the order they were uploaded
        (inclusive).
    """

    since: datetime | None = None
    until: datetime | None = None
    review_state: str | None = None
    site: str | None = None
    province: str | None = None
    min_version: str | None = None
    max_version: str | None = None


@dataclass(frozen=True)
class Options:
    """How the tables look.

    :param headers: column headers as field ``names`` (``group-field``, like ODK Central) or ``labels``.
    :param choices: answers of select questions as choice ``values`` or ``labels``.
    :param language: the language of labels (``fr`` or ``en``; a form without it falls back to its default).
    :param split_multiple: add one 1/0 column per choice after each select_multiple column.
    :param include_edits: also the superseded versions of edited records, as rows whose
        ``_superseded_by`` names the version that replaced them.
    :param geometry_field: the geo field GeoJSON/GeoPackage exports draw (default: the first).
    """

    headers: str = "names"
    choices: str = "values"
    language: str = "fr"
    split_multiple: bool = False
    include_edits: bool = False
    geometry_field: str | None = None


@dataclass(frozen=True)
class ExportSpec:
    """One export: form, format, filters and options."""

    xml_form_id: str
    format: str = "csv"
    filters: Filters = field(default_factory=Filters)
    options: Options = field(default_factory=Options)

    def as_params(self) -> dict[str, str]:
        """The query parameters that ``parse_spec`` reads back into this spec (defaults left out)."""
        out = {"form": self.xml_form_id, "format": self.format}
        f, o = self.filters, self.options
        for name in ("review_state", "site", "province", "min_version", "max_version"):
            if getattr(f, name) is not None:
                out[name] = getattr(f, name)
        if f.since is not None:
            out["since"] = f.since.isoformat()
        if f.until is not None:
            out["until"] = f.until.isoformat()
        defaults = Options()
        for name in ("headers", "choices", "language", "geometry_field"):
            if getattr(o, name) != getattr(defaults, name):
                out[name] = getattr(o, name)
        for name in ("split_multiple", "include_edits"):
            if getattr(o, name):
                out[name] = "true"
        return out


def _bad(name: str, message: str) -> ExportBadParam:
    return ExportBadParam(f"{name}: {message}", details={"field": name})


def _when(params: Mapping[str, str], name: str, *, end: bool = False) -> datetime | None:
    value = (params.get(name) or "").strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            return as_utc(datetime.combine(date.fromisoformat(value), time.max if end else time.min))
        return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        raise _bad(name, f"{value[:40]!r} is not an ISO date (2026-03-01) or date-time (2026-03-01T08:00:00Z)") from None


def _one_of(params: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (params.get(name) or "").strip() or default
    if value not in allowed:
        raise _bad(name, f"{value[:40]!r} is not one of: {', '.join(allowed)}")
    return value


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = (params.get(name) or "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _bad(name, f"{value[:40]!r} is not true or false")


def _text(params: Mapping[str, str], name: str, limit: int = 200) -> str | None:
    value = (params.get(name) or "").strip()
    if len(value) > limit:
        raise _bad(name, f"longer than {limit} characters")
    return value or None


def parse_spec(params: Mapping[str, str], *, xml_form_id: str | None = None, format: str | None = None) -> ExportSpec:  # noqa: A002
    """An ``ExportSpec`` from query parameters (``PARAMS``); ``xml_form_id``/``format`` given by the
    route's path win over the ``form``/``format`` parameters.

    :raises ExportBadParam: (422 ``export.bad_param``, ``details.field`` names it) an unknown
        parameter, a value out of its list, a date that is not ISO, or ``since`` after ``until``.
    """
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise _bad(unknown[0], f"unknown parameter; the export takes: {', '.join(PARAMS)}")
    form_id = xml_form_id or _text(params, "form")
    if not form_id:
        raise _bad("form", "which form to export is missing")
    chosen = format or (params.get("format") or "").strip() or "csv"
    if chosen not in FORMAT_NAMES:
        raise _bad("format", f"{chosen[:40]!r} is not one of: {', '.join(FORMAT_NAMES)}")
    since, until = _when(params, "since"), _when(params, "until", end=True)
    if since is not None and until is not None and since > until:
        raise _bad("since", "is after until")
    review_state = _text(params, "review_state")
    if review_state is not None and review_state not in REVIEW_STATES:
        raise _bad("review_state", f"{review_state[:40]!r} is not one of: {', '.join(REVIEW_STATES)}")
    filters = Filters(since=since, until=until, review_state=review_state, site=_text(params, "site"),
                      province=_text(params, "province"), min_version=_text(params, "min_version"),
                      max_version=_text(params, "max_version"))
    options = Options(headers=_one_of(params, "headers", HEADERS, "names"),
                      choices=_one_of(params, "choices", CHOICES, "values"),
                      language=_one_of(params, "language", LANGUAGES, "fr"),
                      split_multiple=_flag(params, "split_multiple"), include_edits=_flag(params, "include_edits"),
                      geometry_field=_text(params, "geometry_field", limit=500))
    return ExportSpec(xml_form_id=form_id, format=chosen, filters=filters, options=options)
