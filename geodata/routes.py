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
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel
from starlette.background import BackgroundTask

from app.auth import ApiActor, StaffActor, require_roles
from app.deps import BlobsDep, SessionDep, SettingsDep
from app.errors import NotFound
from app.identity import Actor
from geodata import export, importers, index, map_data, media, read, stages, tiles, upsert
from geodata.errors import BadBbox, EmptySiteFile, SiteFileTooLarge
from geodata.schemas import (
    AssurancePublic,
    AssuranceUpdate,
    ImportReport,
    LegalAreaCollection,
    RecomputeResult,
    SiteCollection,
    SiteDetail,
    SiteStats,
    StatusChange,
    UnmappedList,
)

router = APIRouter(prefix="/api/v1/sites", tags=["sites"])
ReaderActor = Annotated[Actor, Depends(require_roles("admin", "coordinator", "monitor"))]


def get_site_index(request: Request) -> index.SiteIndexCache:
    """The app's site index cache (``install`` puts it on ``app.state.site_index``)."""
    return request.app.state.site_index


SiteIndexDep = Annotated[index.SiteIndexCache, Depends(get_site_index)]


def _bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError as exc:
        raise BadBbox("bbox must be min_lon,min_lat,max_lon,max_lat (numbers)") from exc
    if len(parts) != 4 or parts[0] > parts[2] or parts[1] > parts[3]:
        raise BadBbox("bbox must be min_lon,min_lat,max_lon,max_lat with min <= max")
    return parts  # type: ignore[return-value]


class GeoJSONResponse(JSONResponse):
    """JSON served as ``application/geo+json`` (OpenAPI shows the response model under that type)."""

    media_type = "application/geo+json"


@router.get("", response_model=SiteCollection, response_class=GeoJSONResponse)
def list_sites(
    session: SessionDep,
    actor: ApiActor,
    cache: SiteIndexDep,
    province: str | None = None,
    kind: str | None = None,
    stage: Annotated[int | None, Query(ge=0, le=6)] = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat")] = None,
    visited_since: date | None = None,
    simplify: Annotated[float | None, Query(ge=0, le=10_000, description="Simplification tolerance in metres.")] = None,
) -> Response:
    """Sites as a GeoJSON FeatureCollection (stage fields only for admin, coordinator and monitor)."""
    body = read.feature_collection(session, actor=actor, province=province, kind=kind, stage=stage,
                                   bbox=_bbox(bbox), visited_since=visited_since, simplify_m=simplify, cache=cache)
    return Response(body, media_type=GeoJSONResponse.media_type)  # built as text (read.feature_collection)


@router.get("/unmapped", response_model_exclude_unset=True)
def list_unmapped(session: SessionDep, actor: ReaderActor, limit: Annotated[int, Query(ge=1, le=5000)] = 500,
                  offset: Annotated[int, Query(ge=0)] = 0) -> UnmappedList:
    """Submissions not mapped to a site, or flagged (e.g. GPS disagrees with the named site)."""
    return read.unmapped(session, actor=actor, limit=limit, offset=offset)


# -- the map (/map): lean layers, provinces, offline tiles (geodata.map_data, geodata.tiles) ----------

map_router = APIRouter(prefix="/api/v1/map", tags=["map"])
tiles_router = APIRouter(tags=["map"])
#: layers and provinces change rarely; a browser may reuse them for a minute (they are private to the user)
MAP_CACHE = "private, max-age=60"


def map_filters(
    province: Annotated[str | None, Query(description="Province name or ISO 3166-2 code (CD-LU).")] = None,
    stage: Annotated[int | None, Query(ge=0, le=6, description="Effective stage now.")] = None,
    mineral: Annotated[str | None, Query(max_length=100)] = None,
    flag: Annotated[bool, Query(description="Only sites with a red flag.")] = False,
    date_from: Annotated[date | None, Query(alias="from", description="Last visit on or after.")] = None,
    date_to: Annotated[date | None, Query(alias="to", description="Last visit on or before.")] = None,
) -> map_data.MapFilters:
    return map_data.MapFilters(province=importers.canonical_province(province) if province else None, stage=stage, mineral=mineral or None, flag=flag,
                               date_from=date_from, date_to=date_to)


MapFiltersDep = Annotated[map_data.MapFilters, Depends(map_filters)]
Zoom = Annotated[int, Query(ge=0, le=22, description="The map's zoom level.")]
Bbox = Annotated[str | None, Query(description="The view: min_lon,min_lat,max_lon,max_lat")]


def _json(body: bytes, cache_control: str = MAP_CACHE) -> Response:
    return Response(body, media_type="application/json", headers={"Cache-Control": cache_control})


@map_router.get("/sites", response_class=JSONResponse)
def map_sites(session: SessionDep, actor: ReaderActor, filters: MapFiltersDep, zoom: Zoom = 5, bbox: Bbox = None) -> Response:
    """The filtered sites for the map: compact points below zoom 12, simplified polygons of the view from it."""
    return _json(map_data.site_layer(session, filters, zoom=zoom, bbox=_bbox(bbox)), "no-cache")


@map_router.get("/legal/{kind}", response_class=GeoJSONResponse)
def map_legal(kind: Literal["zea", "pe", "pr", "quarry", "zin"], session: SessionDep, actor: ReaderActor,
              zoom: Zoom = 5, bbox: Bbox = None) -> Response:
    """A legal layer of the map: ZEA, exploitation (PE) or research (PR) permits, quarry authorisations,
    or forbidden and protected zones (zin), simplified for the zoom."""
    body = map_data.legal_layer(session, kinds=map_data.LEGAL_LAYERS[kind], zoom=zoom, bbox=_bbox(bbox))
    return Response(body, media_type=GeoJSONResponse.media_type, headers={"Cache-Control": MAP_CACHE})


@map_router.get("/visits", response_class=JSONResponse)
def map_visits(session: SessionDep, actor: ReaderActor, filters: MapFiltersDep) -> Response:
    """Located visits of the filtered sites (monitors: their own), for clustering."""
    return _json(map_data.visit_points(session, actor=actor, filters=filters), "no-cache")


@map_router.get("/provinces.geojson", response_class=GeoJSONResponse)
def map_provinces(actor: ReaderActor) -> Response:
    """The DRC provinces, simplified (bundled geoBoundaries layer, ODbL): the map's offline base layer."""
    return Response(map_data.provinces_geojson(), media_type=GeoJSONResponse.media_type,
                    headers={"Cache-Control": "private, max-age=86400"})


@tiles_router.get("/tiles/{z}/{x}/{y}.png", responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
def map_tile(z: int, x: int, y: int, request: Request, actor: ReaderActor) -> Response:
    """A tile of the offline base map (``ASMFIELD_MBTILES``); 404 outside it or when none is set."""
    source: tiles.MBTiles | None = request.app.state.mbtiles
    data = source.tile(z, x, y) if source is not None else None
    if data is None:
        raise NotFound(f"no tile {z}/{x}/{y}", code="map.tile_not_found")
    return Response(data, media_type=source.media_type,  # type: ignore[union-attr]
                    headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{source.version}-{z}-{x}-{y}"'})  # type: ignore[union-attr]


@router.get("/stats", response_model_exclude_unset=True)
def site_stats(session: SessionDep, actor: ReaderActor, filters: MapFiltersDep,
               months: Annotated[int, Query(ge=1, le=240)] = 24) -> SiteStats:
    """Sites per stage and province, and per stage by month; the map's filters narrow the sites counted."""
    site_ids = map_data.matching_site_ids(session, filters) if filters.any else None
    return read.stats(session, months=months, site_ids=site_ids)


def _export(session, fmt: str) -> FileResponse:  # noqa: ANN001
    tmp = Path(tempfile.mkdtemp(prefix="asmfield-export-"))
    path = export.export(session, fmt=fmt, path=tmp / f"sites.{fmt}")
    return FileResponse(path, media_type=export.MEDIA_TYPES[fmt], filename=f"sites.{fmt}",
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


def _file(media_type: str, description: str) -> dict:
    return {200: {"description": description, "content": {media_type: {"schema": {"type": "string", "format": "binary"}}}}}


@router.get("/export.geojson", response_class=FileResponse,
            responses=_file(export.MEDIA_TYPES["geojson"], "Every site with its stage columns (GeoJSON)."))
def export_geojson(session: SessionDep, actor: ReaderActor) -> FileResponse:
    """All sites with their stages as a GeoJSON file."""
    return _export(session, "geojson")


@router.get("/export.gpkg", response_class=FileResponse,
            responses=_file(export.MEDIA_TYPES["gpkg"], "Every site with its stage columns (GeoPackage, layer sites)."))
def export_gpkg(session: SessionDep, actor: ReaderActor) -> FileResponse:
    """All sites with their stages as a GeoPackage."""
    return _export(session, "gpkg")


@router.post("/import", response_model_exclude_unset=True)
def import_sites(
    session: SessionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
    cache: SiteIndexDep,
    actor: StaffActor,
    file: Annotated[UploadFile, File(description="GeoJSON, GeoPackage, zipped Shapefile, KML, CSV or XLSX")],
    mapping: Annotated[str | None, Form(description="Preset (ipis, cami) or attribute=column pairs")] = None,
    kind: Annotated[str | None, Form(description="Force a kind: asm_site, zea, pe, pr, other")] = None,
    crs: Annotated[str | None, Form(description="CRS of the coordinates, e.g. EPSG:32735, for files without one; "
                                                "overrides the file's own (with a warning)")] = None,
    latest_by: Annotated[str | None, Form(description="A register with one row per visit: keep each code's "
                                                      "latest row by this date column")] = None,
    history: Annotated[bool, Form(description="Keep a register's older rows as observations of their site.")] = False,
    default_radius_m: Annotated[float, Form(gt=0, le=50_000)] = 50.0,
    target: Annotated[Literal["auto", "sites", "legal-areas"], Form(
        alias="as", description="Where rows go: sites, legal-areas, or auto (by each row's kind/type).")] = "auto",
    layer: Annotated[str | None, Form(description="The legal areas' layer (default cadastre).")] = None,
    force: Annotated[bool, Form(description="Accept rows that change a feature's kind or namespace.")] = False,
    replace: Annotated[bool, Form(description="Retire what the file no longer holds (sites, and the layer).")] = False,
    dry_run: Annotated[bool, Form(description="Only report what the import would do; write nothing.")] = False,
    dry_run_query: Annotated[bool, Query(alias="dry_run", description="Same as the form field.")] = False,
) -> ImportReport:
    """Import sites and legal areas by code; re-maps submissions and republishes the site list.

    With ``dry_run`` (form field or ``?dry_run=true``) nothing is written: the report lists the rows
    that would be created, updated, left unchanged or refused, and what ``replace`` would retire."""
    dry_run = dry_run or dry_run_query
    limit = settings.max_attachment_bytes
    with tempfile.TemporaryDirectory(prefix="asmfield-sites-") as tmp:
        name = Path(file.filename or "upload").name or "upload"
        path = Path(tmp) / name
        size = 0
        with open(path, "wb") as out:
            while chunk := file.file.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise SiteFileTooLarge(f"site file larger than {limit} bytes")
                out.write(chunk)
        if size == 0:
            raise EmptySiteFile("the uploaded file is empty")
        report = upsert.import_file(session, path=path, filename=name, settings=settings, mapping=mapping, kind=kind,
                                    crs=crs, default_radius_m=default_radius_m, blobs=blobs, actor=actor,
                                    dry_run=dry_run, cache=cache, target=target, layer=layer, force=force,
                                    replace=replace, latest_by=latest_by, history=history)
        return ImportReport.model_validate(report)


@router.post("/recompute")
def recompute(session: SessionDep, settings: SettingsDep, cache: SiteIndexDep, actor: StaffActor) -> RecomputeResult:
    """Re-map every submission and recompute every site's stage."""
    return RecomputeResult.model_validate(stages.recompute_all(session, settings=settings, cache=cache))


class MediaPublished(BaseModel):
    """``POST /api/v1/sites/media``: form files (sites.csv, sites.geojson) changed, and sites listed."""

    versions_changed: int
    sites: int


@router.post("/media")
def publish_media(session: SessionDep, blobs: BlobsDep, actor: StaffActor) -> MediaPublished:
    """Regenerate sites.csv and sites.geojson on every form version that references them."""
    return MediaPublished.model_validate(media.publish_media(session, blobs=blobs, actor=actor))


@router.put("/{code}/assurance")
def set_assurance(code: str, body: AssuranceUpdate, session: SessionDep, actor: StaffActor) -> AssurancePublic:
    """Record a site's third-party attestation (needed for stage 6); null type clears it."""
    site = stages.set_assurance(session, code=code, assurance_type=body.assurance_type, valid_until=body.valid_until,
                                actor=actor)
    return AssurancePublic.from_site(site)


@router.post("/{code}/retire")
def retire_site(code: str, session: SessionDep, settings: SettingsDep, blobs: BlobsDep, cache: SiteIndexDep,
                actor: StaffActor) -> StatusChange:
    """Retire a site: off tablets, statistics and placement; its visits and history stay (audited)."""
    return StatusChange.model_validate(upsert.set_status(session, code=code, retired=True, settings=settings,
                                                         blobs=blobs, actor=actor, cache=cache))


@router.post("/{code}/restore")
def restore_site(code: str, session: SessionDep, settings: SettingsDep, blobs: BlobsDep, cache: SiteIndexDep,
                 actor: StaffActor) -> StatusChange:
    """Bring a retired site back (audited)."""
    return StatusChange.model_validate(upsert.set_status(session, code=code, retired=False, settings=settings,
                                                         blobs=blobs, actor=actor, cache=cache))


@router.get("/{code}", response_model_exclude_unset=True)
def get_site(code: str, session: SessionDep, actor: ApiActor) -> SiteDetail:
    """One site with stage history, visits and photos (as far as the caller's role allows)."""
    return read.site_detail(session, actor=actor, code=code)


# -- legal areas (titles, ZEA, forbidden zones...: the sites' legal context, never sites) -------------

legal_router = APIRouter(prefix="/api/v1/legal-areas", tags=["legal areas"])


@legal_router.get("", response_model=LegalAreaCollection, response_class=GeoJSONResponse)
def list_legal_areas(
    session: SessionDep,
    actor: ReaderActor,
    layer: Annotated[str | None, Query(max_length=50, description="Only this layer (e.g. cadastre).")] = None,
    kind: Annotated[Literal["zea", "pe", "pr", "quarry", "zin", "protected", "other"] | None, Query()] = None,
    bbox: Bbox = None,
) -> Response:
    """The active legal areas as a GeoJSON FeatureCollection (full geometry)."""
    body = map_data.legal_layer(session, kinds=(kind,) if kind else None, layer=layer, zoom=22, bbox=_bbox(bbox))
    return Response(body, media_type=GeoJSONResponse.media_type)


@legal_router.post("/{layer}/{code}/retire")
def retire_legal_area(layer: str, code: str, session: SessionDep, settings: SettingsDep, blobs: BlobsDep,
                      cache: SiteIndexDep, actor: StaffActor) -> StatusChange:
    """Retire a legal area: off the map and the sites' legal context (audited)."""
    return StatusChange.model_validate(upsert.set_status(session, code=code, layer=layer, retired=True,
                                                         settings=settings, blobs=blobs, actor=actor, cache=cache))


@legal_router.post("/{layer}/{code}/restore")
def restore_legal_area(layer: str, code: str, session: SessionDep, settings: SettingsDep, blobs: BlobsDep,
                       cache: SiteIndexDep, actor: StaffActor) -> StatusChange:
    """Bring a retired legal area back (audited)."""
    return StatusChange.model_validate(upsert.set_status(session, code=code, layer=layer, retired=False,
                                                         settings=settings, blobs=blobs, actor=actor, cache=cache))


def install(app: FastAPI) -> None:
    """Mount the routes; give the app its own site index cache (on its engine, so the submission
    subscriber of this app finds the same one)."""
    app.state.site_index = index.attach(app.state.engine)
    mbtiles = app.state.settings.mbtiles
    app.state.mbtiles = tiles.MBTiles(mbtiles) if mbtiles else None
    app.include_router(router)
    app.include_router(legal_router)
    app.include_router(map_router)
    app.include_router(tiles_router)
