"""HTTP routes of the geodata capability (thin: parse, authorise, call the service).

Access (design.md §6): admin and coordinator everything; monitors read sites, stages, maps and
statistics but only their own visits; caseworkers get the site list without any visit data
(code, name, kind, province, geometry — to name the site of a case); device tokens nothing.
Import, attestation and recompute are for admin/coordinator.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel
from starlette.background import BackgroundTask

from app.auth import ApiActor, StaffActor, require_roles
from app.deps import BlobsDep, SessionDep, SettingsDep
from app.errors import Invalid, PayloadTooLarge
from app.identity import Actor
from geodata import service

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])
ReaderActor = Annotated[Actor, Depends(require_roles("admin", "coordinator", "monitor"))]


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError as exc:
        raise Invalid("bbox must be min_lon,min_lat,max_lon,max_lat (numbers)", code="sites.bad_bbox") from exc
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise Invalid("bbox must be min_lon,min_lat,max_lon,max_lat with min <= max", code="sites.bad_bbox")
    return parts  # type: ignore[return-value]


@router.get("")
def list_sites(
    session: SessionDep,
    actor: ApiActor,
    province: str | None = None,
    kind: str | None = None,
    stage: Annotated[int | None, Query(ge=0, le=6)] = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat")] = None,
    visited_since: date | None = None,
    simplify: Annotated[float | None, Query(ge=0, le=10_000, description="Simplification tolerance in metres.")] = None,
) -> Response:
    """Sites as a GeoJSON FeatureCollection."""
    body = service.feature_collection(session, actor=actor, province=province, kind=kind, stage=stage,
                                      bbox=_bbox(bbox), visited_since=visited_since, simplify_m=simplify)
    return Response(body, media_type="application/geo+json")


@router.get("/unmapped")
def list_unmapped(session: SessionDep, actor: ReaderActor, limit: Annotated[int, Query(ge=1, le=5000)] = 500,
                  offset: Annotated[int, Query(ge=0)] = 0) -> dict:
    """Submissions not mapped to a site, or flagged (e.g. GPS disagrees with the named site)."""
    return service.unmapped(session, actor=actor, limit=limit, offset=offset)


@router.get("/stats")
def site_stats(session: SessionDep, actor: ReaderActor, months: Annotated[int, Query(ge=1, le=240)] = 24) -> dict:
    """Sites per stage and province, and per stage by month."""
    return service.stats(session, months=months)


def _export(session, fmt: str, suffix: str, media_type: str) -> FileResponse:  # noqa: ANN001
    tmp = Path(tempfile.mkdtemp(prefix="asmfield-export-"))
    path = service.export(session, fmt=fmt, path=tmp / f"sites.{suffix}")
    return FileResponse(path, media_type=media_type, filename=f"sites.{suffix}",
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


@router.get("/export.geojson")
def export_geojson(session: SessionDep, actor: ReaderActor) -> FileResponse:
    """All sites with their stages as a GeoJSON file."""
    return _export(session, "geojson", "geojson", "application/geo+json")


@router.get("/export.gpkg")
def export_gpkg(session: SessionDep, actor: ReaderActor) -> FileResponse:
    """All sites with their stages as a GeoPackage."""
    return _export(session, "gpkg", "gpkg", "application/geopackage+sqlite3")


@router.post("/import")
def import_sites(
    session: SessionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
    actor: StaffActor,
    file: Annotated[UploadFile, File(description="GeoJSON, GeoPackage, zipped Shapefile, KML or CSV")],
    mapping: Annotated[str | None, Form(description="Preset (ipis, cami) or attribute=column pairs")] = None,
    kind: Annotated[str | None, Form(description="Force a kind: asm_site, zea, pe, pr, other")] = None,
    crs: Annotated[str | None, Form(description="CRS for files without one, e.g. EPSG:32735")] = None,
    default_radius_m: Annotated[float, Form(gt=0, le=50_000)] = 50.0,
    dry_run: Annotated[bool, Form()] = False,
) -> dict:
    """Import or update sites by code; re-maps submissions and republishes the site list."""
    limit = settings.max_attachment_bytes
    with tempfile.TemporaryDirectory(prefix="asmfield-sites-") as tmp:
        name = Path(file.filename or "upload").name or "upload"
        path = Path(tmp) / name
        size = 0
        with open(path, "wb") as out:
            while chunk := file.file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"site file larger than {limit} bytes", code="sites.too_large")
                out.write(chunk)
        if size == 0:
            raise Invalid("the uploaded file is empty", code="sites.empty_file")
        return service.import_file(session, path=path, filename=name, settings=settings, mapping=mapping, kind=kind,
                                   crs=crs, default_radius_m=default_radius_m, blobs=blobs, actor=actor,
                                   dry_run=dry_run)


@router.post("/recompute")
def recompute(session: SessionDep, settings: SettingsDep, actor: StaffActor) -> dict:
    """Re-map every submission and recompute every site's stage."""
    return service.recompute_all(session, settings=settings)


class AssuranceIn(BaseModel):
    assurance_type: str | None
    valid_until: date | None = None


@router.put("/{code}/assurance")
def set_assurance(code: str, body: AssuranceIn, session: SessionDep, actor: StaffActor) -> dict:
    """Record a site's third-party attestation (needed for stage 6); null type clears it."""
    site = service.set_assurance(session, code=code, assurance_type=body.assurance_type, valid_until=body.valid_until,
                                 actor=actor)
    return {"code": site.code, "assurance_type": site.assurance_type,
            "assurance_valid_until": site.assurance_valid_until.isoformat() if site.assurance_valid_until else None,
            "stage": site.stage, "stage_status": site.stage_status}


@router.get("/{code}")
def get_site(code: str, session: SessionDep, actor: ApiActor) -> dict:
    """One site with stage history, visits and photos (as far as the caller's role allows)."""
    return service.site_detail(session, actor=actor, code=code)


def install(app: FastAPI) -> None:
    app.include_router(router)
