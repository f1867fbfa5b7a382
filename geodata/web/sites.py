"""Web pages of geodata: the site list, one site, and the site import with its dry run.

Pages read what the sites API reads (``geodata.site_page`` over ``read.site_detail``) and import
through the same service as ``POST /api/v1/sites/import`` (``upsert.import_file``): first a dry
run, then "Confirm" imports the very same file. Between the two the upload waits under the data
directory in a folder named by a random token bound to the person who sent it (``PENDING_TTL``);
the browser only ever sends that token back, never a path.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from app.deps import BlobsDep, SessionDep, SettingsDep
from app.errors import DomainError
from app.settings import Settings
from app.web.i18n import N_, current_language, gettext
from app.web.render import NavLink, WebActorDep, render, require, web_router
from geodata import importers, site_page, upsert
from geodata.routes import SiteIndexDep
from geodata.schemas import ImportReport

log = logging.getLogger(__name__)
router = web_router()
#: this module's entries in the top navigation
NAV: tuple[NavLink, ...] = (NavLink("/sites", N_("Sites"), roles=("admin", "coordinator", "monitor"), order=25),)

#: who sees site pages (as GET /api/v1/sites/{code} with visits) and who may import (as the API)
READERS = ("admin", "coordinator", "monitor")
IMPORTERS = ("admin", "coordinator")
#: an upload waiting for "Confirm import" is dropped after this many seconds
PENDING_TTL = 3600
TOKEN = re.compile(r"^[A-Za-z0-9_-]{32}$")

STAGE_NAMES = {"0": N_("Unknown / unassessed"), "1": N_("Mapped, informal"), "2": N_("Organised"),
               "3": N_("Legitimate / authorised"), "4": N_("Controlled & monitored"),
               "5": N_("Risk-mitigated (no serious abuses)"), "6": N_("Certified / conformant")}
STATUS_NAMES = {"assessed": N_("assessed"), "unassessed": N_("unassessed"), "inactive": N_("inactive")}
KIND_NAMES = {"asm_site": N_("Mine site"), "zea": N_("ZEA"), "pe": N_("Exploitation permit"),
              "pr": N_("Research permit"), "other": N_("Other")}
#: why a visit's placement on its site is doubtful (geodata.placement)
FLAG_NAMES = {"gps_disagrees_with_named_site": N_("the GPS point is far from the site the monitor named"),
              "unknown_site_code": N_("the site code the monitor gave is unknown"),
              "location_outside_drc": N_("the GPS point is outside the DRC"), "no_location": N_("no GPS point")}
#: the kinds of sites (legal areas are never in the site list)
SITE_KINDS = ("asm_site", "other")
LEGAL_KIND_NAMES = {"zea": N_("ZEA"), "pe": N_("Exploitation permit"), "pr": N_("Research permit"),
                    "quarry": N_("Quarry authorisation"), "zin": N_("Forbidden zone"),
                    "protected": N_("Protected area"), "other": N_("Other title")}
TARGET_NAMES = {"auto": N_("Sorted by their kind or type"), "sites": N_("Sites (mine sites monitors visit)"),
                "legal-areas": N_("Legal areas (titles, ZEA, zones)")}
#: the ladder's fixed reasons (geodata.ladder) as message ids; others are shown as the ladder says them
REASONS = {
    "no on-site visit": N_("no on-site visit"),
    "stage 2 needs an approved cooperative": N_("stage 2 needs an approved cooperative"),
    "stage 2 needs the cooperative approval seen (with a document photo)":
        N_("stage 2 needs the cooperative approval seen (with a document photo)"),
    "stage 2 needs SAEMAPE or the Division des Mines present at one of the last visits":
        N_("stage 2 needs SAEMAPE or the Division des Mines present at one of the last visits"),
    "stage 3 needs the site inside a ZEA or a title with an ASM agreement":
        N_("stage 3 needs the site inside a ZEA or a title with an ASM agreement"),
    "stage 3 needs the ZEA/title number to match a ZEA/PE/PR polygon containing the site":
        N_("stage 3 needs the ZEA/title number to match a ZEA/PE/PR polygon containing the site"),
    "stage 3 needs a site authorisation or an agreement with the title holder":
        N_("stage 3 needs a site authorisation or an agreement with the title holder"),
    "stage 6 needs a third-party attestation on the site record":
        N_("stage 6 needs a third-party attestation on the site record"),
    "stage 6 needs an unexpired attestation": N_("stage 6 needs an unexpired attestation"),
    "non-state armed group present": N_("non-state armed group present"),
    "forced labour by armed actors": N_("forced labour by armed actors"),
    "forced-labour indicators reported": N_("forced-labour indicators reported"),
    "sexual violence reported": N_("sexual violence reported"),
    "children in hazardous work": N_("children in hazardous work"),
}
#: parts of the ladder's "stage N needs …" reasons
PIECES = {
    "minerals": N_("minerals"), "workers_total": N_("number of workers"), "location": N_("location"),
    "controlled access": N_("controlled access"),
    "at least 25 % of miners with cards": N_("at least 25 % of miners with cards"),
    "traceability": N_("traceability"), "a monitoring programme": N_("a monitoring programme"),
    "a grievance mechanism": N_("a grievance mechanism"), "children seen on site": N_("children seen on site"),
    "armed actors present or not reported": N_("armed actors present or not reported"),
    "PPE below threshold": N_("PPE below threshold"),
    "fatalities reported or not answered": N_("fatalities reported or not answered"),
    "corrective actions open": N_("corrective actions open"),
}
#: import refusals shown often, as translated messages (the service's own words follow them)
IMPORT_ERRORS = {
    "sites.not_geodata": N_("This is not a file of sites this server reads: GeoJSON, GeoPackage, zipped "
                            "Shapefile, KML, or CSV with WKT or lon/lat columns."),
    "sites.empty_file": N_("The file is empty or holds no sites."),
    "sites.too_large": N_("The file is too large."),
    "sites.no_usable_rows": N_("No row of the file can be imported."),
    "sites.unreadable": N_("The file cannot be read as geodata."),
    "sites.bad_zip": N_("The zip file is damaged."),
    "sites.zip_without_shp": N_("The zip file holds no Shapefile (.shp)."),
    "sites.missing_crs": N_("The file has no coordinate reference system: give one."),
    "sites.bad_crs": N_("Unknown coordinate reference system; use e.g. EPSG:4326 or EPSG:32735."),
    "sites.bad_csv": N_("The CSV file cannot be read."),
    "sites.csv_without_geometry": N_("The CSV needs a WKT column or lon/lat columns."),
    "sites.no_code_column": N_("No site code column: name it code, or give a mapping such as code=MYCOLUMN."),
    "sites.bad_mapping": N_("The mapping does not match the file's columns."),
    "sites.bad_kind": N_("Unknown kind."),
    "sites.no_geometry": N_("The file has no geometry."),
    "sites.bad_layer": N_("Bad layer name: lower-case letters, digits, _ . - (at most 50), e.g. cadastre."),
}
#: the importer's per-row problems and remarks (geodata.importers) as message ids
ROW_PROBLEMS = {
    "missing site code": N_("missing site code"),
    "site code longer than 100 characters": N_("site code longer than 100 characters"),
    "geometry is not valid WKT": N_("geometry is not valid WKT"),
    "empty geometry": N_("empty geometry"),
    "coordinates are not longitude/latitude (out of range); is the CRS right?":
        N_("coordinates are not longitude/latitude (out of range); is the CRS right?"),
    "a point needs a radius in metres (0–50000)": N_("a point needs a radius in metres (0–50000)"),
    "invalid polygon that cannot be repaired": N_("invalid polygon that cannot be repaired"),
    "no polygon in the geometry collection": N_("no polygon in the geometry collection"),
    "invalid polygon repaired (make_valid)": N_("invalid polygon repaired (make_valid)"),
}
ERROR_FIELDS = {"sites.bad_layer": "layer", "sites.bad_mapping": "mapping", "sites.no_code_column": "mapping", "sites.bad_kind": "kind",
                "sites.bad_crs": "crs", "sites.missing_crs": "crs"}


def _piece(text: str) -> str:
    if text in PIECES:
        return gettext(PIECES[text])
    if m := re.fullmatch(r"two clean on-site visits at least (\d+) days apart", text):
        return gettext("two clean on-site visits at least %(days)s days apart") % {"days": m.group(1)}
    return reason_text(text) if text in REASONS else text


def reason_text(reason: str) -> str:
    """A ladder reason (``geodata.ladder``) in the reader's language; unknown wording stays as it is."""
    if reason in REASONS:
        return gettext(REASONS[reason])
    if reason.startswith("red flag: "):
        return gettext("red flag: %(reason)s") % {"reason": reason_text(reason[len("red flag: "):])}
    if m := re.fullmatch(r"stage (\d) needs (.+)", reason):
        sep = "; " if "; " in m.group(2) or m.group(1) == "5" else ", "
        what = sep.join(_piece(p) for p in m.group(2).split(sep))
        return gettext("stage %(n)s needs %(what)s") % {"n": m.group(1), "what": what}
    if m := re.fullmatch(r"capped at (\d): serious abuse on (\S+)", reason):
        return gettext("capped at %(n)s: serious abuse on %(date)s") % {"n": m.group(1), "date": m.group(2)}
    return reason


def _number(text: str) -> str:
    """A count as the importer writes it (``4,987``) with the reader's thousands separator."""
    return text.replace(",", "\u202f") if current_language() == "fr" else text


def _decimal(text: str) -> str:
    """A decimal number as the importer writes it (``27.47912``) with the reader's decimal mark."""
    return text.replace(".", ",") if current_language() == "fr" else text


#: the importer's whole-file remarks (row 0) and its remark on far-away rows (geodata.importers)
REGISTER_NOTE = re.compile(r"([\d,]+) rows → ([\d,]+) sites: ([\d,]+) older rows of repeated site codes superseded by "
                           r"the latest row by (.+?) \((kept as history|dropped: [^)]*)\)"
                           r"(?:; ([\d,]+) rows without a readable .+ ranked oldest)?")
CRS_NOTE = re.compile(r"the given CRS (.+) replaces the file's own \((.+)\): its coordinates are read as .+")
DATE_COLUMNS_NOTE = re.compile(r"several date columns \((.+)\): points repeating a code are refused as duplicates; .*")
OUTSIDE_NOTE = re.compile(r"location \((-?[\d.]+), (-?[\d.]+)\) is outside the DRC's bounding box; .*")


def _file_note(text: str) -> str | None:
    """A whole-file remark of the importer in the reader's language, or None if it is not one of them."""
    if m := REGISTER_NOTE.fullmatch(text):
        values = {"rows": _number(m.group(1)), "sites": _number(m.group(2)), "older": _number(m.group(3)),
                  "column": m.group(4)}
        if m.group(5) == "kept as history":
            note = gettext("%(rows)s rows → %(sites)s sites: %(older)s older rows of repeated site codes superseded "
                           "by the latest row by %(column)s (kept as history)", **values)
        else:
            note = gettext("%(rows)s rows → %(sites)s sites: %(older)s older rows of repeated site codes superseded "
                           "by the latest row by %(column)s (dropped: tick “Keep older rows as history” to keep them "
                           "as observations)", **values)
        if m.group(6):
            note = gettext("%(note)s; %(undated)s rows without a readable %(column)s ranked oldest", note=note,
                           undated=_number(m.group(6)), column=m.group(4))
        return note
    if m := CRS_NOTE.fullmatch(text):
        return gettext("the given CRS %(crs)s replaces the file's own (%(own)s): its coordinates are read as %(crs)s",
                       crs=m.group(1), own=m.group(2))
    if m := DATE_COLUMNS_NOTE.fullmatch(text):
        return gettext("several date columns (%(columns)s): points repeating a code are refused as duplicates; give "
                       "“Latest by” (the date column) to keep the latest row of each site", columns=m.group(1))
    return None


def problem_text(text: str) -> str:
    """A row's problem or remark from the importer in the reader's language (else as the importer says it)."""
    if text in ROW_PROBLEMS:
        return gettext(ROW_PROBLEMS[text])
    if (note := _file_note(text)) is not None:
        return note
    if m := OUTSIDE_NOTE.fullmatch(text):
        return gettext("location (%(lon)s; %(lat)s) is outside the DRC's bounding box; are longitude and latitude "
                       "swapped?", lon=_decimal(m.group(1)), lat=_decimal(m.group(2)))
    if m := re.fullmatch(r"duplicate code \(first on row (\d+)\)", text):
        return gettext("duplicate code (first on row %(row)s)") % {"row": m.group(1)}
    if m := re.fullmatch(r"another part of the site on row (\d+): merged into one multi-polygon", text):
        return gettext("another part of the site on row %(row)s: merged into one multi-polygon") % {"row": m.group(1)}
    if m := re.fullmatch(r"(\w+) is not a site shape \(use polygons, or points with a radius\)", text):
        return gettext("%(shape)s is not a site shape (use polygons, or points with a radius)") % {"shape": m.group(1)}
    return text


def refusal_text(text: str | None) -> str:
    """Why the import refuses a row (``geodata.upsert``), in the reader's language (else as said)."""
    text = text or ""
    if m := re.fullmatch(r"would change the kind of (?:site )?(.+?) (?:in layer (\S+) )?from (\S+) to (\S+): .*", text):
        return gettext("would change the kind of %(code)s from %(old)s to %(new)s: tick Force if it is the same "
                       "feature") % {"code": m.group(1), "old": m.group(3), "new": m.group(4)}
    if m := re.fullmatch(r"code (.+?) is a legal area \((.+)\); .*", text):
        return gettext("code %(code)s is already a legal area (%(where)s): choose Sites if both exist, or tick "
                       "Force") % {"code": m.group(1), "where": ", ".join(_where(w) for w in m.group(2).split(", "))}
    if m := re.fullmatch(r"code (.+?) is a site \((\S+)\); .*", text):
        return gettext("code %(code)s is already a site: choose Legal areas if both exist, or tick Force") % {
            "code": m.group(1)}
    return text


def _where(text: str) -> str:
    """``ZEA in layer cadastre`` (where a code is a legal area, ``geodata.upsert``) in the reader's language."""
    if m := re.fullmatch(r"(\S+) in layer (\S+)", text):
        kind = m.group(1).lower()
        name = m.group(1) if kind in ("zea", "pe", "pr") else gettext(LEGAL_KIND_NAMES.get(kind, m.group(1)))
        return gettext("%(kind)s in layer %(layer)s", kind=name, layer=m.group(2))
    return text


def metres(value: float) -> str:
    """A distance in whole metres, e.g. ``285 m``, ``1\u202f250 m`` in French (stored to 0.1 m)."""
    text = f"{round(value):,}"
    return (text.replace(",", "\u202f") if current_language() == "fr" else text) + "\u00a0m"


def _names() -> dict[str, Any]:
    return {"stage_names": {k: gettext(v) for k, v in STAGE_NAMES.items()},
            "status_names": {k: gettext(v) for k, v in STATUS_NAMES.items()},
            "kind_names": {k: gettext(v) for k, v in KIND_NAMES.items()}, "reason_text": reason_text,
            "legal_kind_names": {k: gettext(v) for k, v in LEGAL_KIND_NAMES.items()},
            "problem_text": problem_text, "refusal_text": refusal_text, "metres": metres,
            "flag_names": {k: gettext(v) for k, v in FLAG_NAMES.items()}}


# -- the list ----------------------------------------------------------------------------


def _int_or_none(value: str | None, low: int, high: int) -> int | None:
    try:
        n = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return n if n is None or low <= n <= high else None


@router.get("/sites", response_class=HTMLResponse)
def sites_page(request: Request, actor: WebActorDep, session: SessionDep, stage: str | None = None,
               province: str | None = None, kind: str | None = None, visited_days: str | None = None,
               q: str | None = None, page: str | None = None) -> Response:
    require(actor, *READERS)
    filters = {"stage": _int_or_none(stage, 0, 6), "province": (province or "").strip()[:100] or None,
               "kind": kind if kind in SITE_KINDS else None,
               "visited_days": _int_or_none(visited_days, 1, 3650), "q": (q or "").strip()[:100] or None}
    listing = site_page.site_list(session, page=_int_or_none(page, 1, 100_000) or 1, **filters)
    query = {k: v for k, v in filters.items() if v is not None}
    return render(request, "geodata/sites.html", {
        **_names(), "listing": listing, "filters": filters,
        "site_kinds": [(k, gettext(KIND_NAMES[k])) for k in SITE_KINDS],
        "here_without_page": "/sites?" + urlencode(query) + ("&" if query else ""),
        "stage_link": lambda s: "/sites?" + urlencode({**query, "stage": s} if s is not None else
                                                      {k: v for k, v in query.items() if k != "stage"}),
        "may_import": actor.has_role(*IMPORTERS)})


# -- the import --------------------------------------------------------------------------


def _pending_root(settings: Settings) -> Path:
    return settings.data_dir / "pending-site-imports"


def _drop_expired(settings: Settings) -> None:
    root = _pending_root(settings)
    if not root.is_dir():
        return
    for folder in root.iterdir():
        try:
            if time.time() - folder.stat().st_mtime > PENDING_TTL:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def _pending(settings: Settings, token: str, user_id: int) -> tuple[Path, dict[str, Any]] | None:
    """The waiting upload of ``token`` if it is this user's and not expired (never a client path)."""
    if not TOKEN.match(token or ""):
        return None
    folder = _pending_root(settings) / token
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("user_id") != user_id or time.time() - meta.get("created", 0) > PENDING_TTL:
        return None
    return folder / "upload", meta


def _sanitise(message: str, folder: Path, filename: str) -> str:
    """A service message without the server's folder (it may quote the file it read)."""
    return message.replace(str(folder / "upload"), filename).replace(str(folder), "…")


def _import_form(request: Request, *, errors: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                 report: dict[str, Any] | None = None, token: str | None = None, done: bool = False,
                 status_code: int = 200) -> Response:
    return render(request, "geodata/import.html", {
        **_names(), "errors": errors or {}, "values": values or {}, "report": report, "token": token, "done": done,
        "kinds": [(k, gettext(KIND_NAMES[k])) for k in importers.KINDS],
        "targets": [(k, gettext(v)) for k, v in TARGET_NAMES.items()]}, status_code=status_code)


def _error(exc: DomainError) -> tuple[str, str]:
    if exc.code == "sites.bad_mapping" and (m := re.fullmatch(r"latest_by names column .*\(columns: (.*)\)",
                                                                exc.message)):
        return "latest_by", gettext("The file has no column of that name (columns: %(columns)s).",
                                    columns=m.group(1))
    text = gettext(IMPORT_ERRORS[exc.code]) if exc.code in IMPORT_ERRORS else exc.message
    if exc.code in IMPORT_ERRORS and exc.code not in ("sites.too_large", "sites.empty_file"):
        text = f"{text} ({exc.message})"
    return ERROR_FIELDS.get(exc.code, "file"), text


def _run(session, settings, blobs, cache, actor, folder: Path, meta: dict[str, Any], *,  # noqa: ANN001
         dry_run: bool) -> dict[str, Any]:
    options = meta["options"]
    report = upsert.import_file(session, path=folder / "upload", filename=meta["filename"], settings=settings,
                                mapping=options["mapping"], kind=options["kind"], crs=options["crs"],
                                default_radius_m=options["default_radius_m"], blobs=blobs, actor=actor,
                                dry_run=dry_run, cache=cache, target=options.get("target", "auto"),
                                layer=options.get("layer"), force=options.get("force", False),
                                replace=options.get("replace", False), latest_by=options.get("latest_by"),
                                history=options.get("history", False))
    return ImportReport.model_validate(report).model_dump(mode="json")


@router.get("/sites/import", response_class=HTMLResponse)
def import_page(request: Request, actor: WebActorDep) -> Response:
    require(actor, *IMPORTERS)
    return _import_form(request, values={"default_radius_m": "50"})


@router.post("/sites/import", response_class=HTMLResponse)
def import_dry_run(request: Request, actor: WebActorDep, session: SessionDep, settings: SettingsDep,
                   blobs: BlobsDep, cache: SiteIndexDep,
                   file: Annotated[UploadFile | None, File()] = None, mapping: Annotated[str, Form()] = "",
                   kind: Annotated[str, Form()] = "", crs: Annotated[str, Form()] = "",
                   default_radius_m: Annotated[str, Form()] = "50", target: Annotated[str, Form()] = "auto",
                   layer: Annotated[str, Form()] = "", force: Annotated[str, Form()] = "",
                   replace: Annotated[str, Form()] = "", latest_by: Annotated[str, Form()] = "",
                   history: Annotated[str, Form()] = "") -> Response:
    """Keep the upload under a fresh token and show the dry run of importing it."""
    require(actor, *IMPORTERS)
    values = {"mapping": mapping[:500], "kind": kind, "crs": crs[:100], "default_radius_m": default_radius_m[:20],
              "target": target, "layer": layer[:50], "force": bool(force), "replace": bool(replace),
              "latest_by": latest_by[:100], "history": bool(history)}
    errors: dict[str, str] = {}
    if target not in TARGET_NAMES:
        errors["target"] = gettext("Choose from the list.")
    if layer.strip() and not upsert.LAYER_PATTERN.match(layer.strip().lower()):
        errors["layer"] = gettext("Lower-case letters, digits, _ . - (at most 50), e.g. cadastre.")
    try:
        radius = float(default_radius_m.replace(",", "."))
        if not 0 < radius <= 50_000:
            raise ValueError
    except ValueError:
        errors["default_radius_m"] = gettext("A radius in metres, more than 0 and at most 50000.")
    if len(latest_by.strip()) > 100:
        errors["latest_by"] = gettext("A column name of at most 100 characters.")
    if kind and kind not in importers.KINDS:
        errors["kind"] = gettext("Unknown kind.")
    if file is None or not file.filename:
        errors["file"] = gettext("Choose a file.")
    if errors:
        return _import_form(request, errors=errors, values=values, status_code=422)
    _drop_expired(settings)
    token = secrets.token_urlsafe(24)
    folder = _pending_root(settings) / token
    folder.mkdir(parents=True)
    name = Path(file.filename or "upload").name[:200] or "upload"
    size, limit = 0, settings.max_attachment_bytes
    with open(folder / "upload", "wb") as out:
        while chunk := file.file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                break
            out.write(chunk)
    if size == 0 or size > limit:
        shutil.rmtree(folder, ignore_errors=True)
        message = gettext("The file is empty or holds no sites.") if size == 0 else gettext("The file is too large.")
        return _import_form(request, errors={"file": message}, values=values, status_code=413 if size else 422)
    meta = {"user_id": actor.user.id, "created": time.time(), "filename": name,
            "options": {"mapping": mapping.strip() or None, "kind": kind or None, "crs": crs.strip() or None,
                        "default_radius_m": radius, "target": target, "layer": layer.strip().lower() or None,
                        "force": bool(force), "replace": bool(replace), "latest_by": latest_by.strip() or None,
                        "history": bool(history)}}
    (folder / "meta.json").write_text(json.dumps(meta))
    try:
        report = _run(session, settings, blobs, cache, actor, folder, meta, dry_run=True)
    except DomainError as exc:
        session.rollback()
        shutil.rmtree(folder, ignore_errors=True)
        field, text = _error(exc)
        return _import_form(request, errors={field: _sanitise(text, folder, name)}, values=values,
                            status_code=exc.status_code if 400 <= exc.status_code < 500 else 422)
    except Exception:  # a file that trips the readers in a way they do not name: say so, log the cause
        log.exception("site import dry run failed for %s", name)
        session.rollback()
        shutil.rmtree(folder, ignore_errors=True)
        return _import_form(request, errors={"file": gettext("The file cannot be read as geodata.")}, values=values,
                            status_code=422)
    report["filename"] = name
    return _import_form(request, values=values, report=report, token=token)


@router.post("/sites/import/confirm", response_class=HTMLResponse)
def import_confirm(request: Request, actor: WebActorDep, session: SessionDep, settings: SettingsDep,
                   blobs: BlobsDep, cache: SiteIndexDep, token: Annotated[str, Form()] = "") -> Response:
    """Import the file whose dry run the person just saw (the same file, the same options)."""
    require(actor, *IMPORTERS)
    pending = _pending(settings, token, actor.user.id)
    if pending is None:
        return _import_form(request, errors={"file": gettext("This upload has expired or is not yours: send the "
                                                             "file again.")}, values={"default_radius_m": "50"},
                            status_code=410)
    path, meta = pending
    folder = path.parent
    try:
        report = _run(session, settings, blobs, cache, actor, folder, meta, dry_run=False)
    except DomainError as exc:
        session.rollback()
        field, text = _error(exc)
        return _import_form(request, errors={field: _sanitise(text, folder, meta["filename"])},
                            values={"default_radius_m": "50"}, status_code=exc.status_code if exc.status_code < 500 else 422)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    report["filename"] = meta["filename"]
    return _import_form(request, report=report, done=True)


# -- one site ----------------------------------------------------------------------------


@router.get("/sites/{code}", response_class=HTMLResponse)
def site_detail_page(request: Request, code: str, actor: WebActorDep, session: SessionDep) -> Response:
    require(actor, *READERS)
    page = site_page.site_page(session, actor=actor, code=code)
    return render(request, "geodata/site.html", {**_names(), "p": page, "site": page.detail.properties,
                                                 "is_monitor": actor.role == "monitor"})
