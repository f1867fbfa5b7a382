"""Geodata fixtures: bundled forms installed, sites made with shapely, visits submitted for real."""

from __future__ import annotations

import uuid

import geopandas as gpd
import pytest
import shapely
from pyproj import Geod
from sqlmodel import select

from app.blobs import FilesystemBlobStore
from app.composition import build_hooks
from app.db import session_scope
from app.identity import Actor

GEOD = Geod(ellps="WGS84")
KOLWEZI = (25.47, -10.72)


def offset(lon, lat, metres, azimuth=90.0):
    x, y, _ = GEOD.fwd(lon, lat, azimuth, metres)
    return x, y


def square(lon, lat, half_m):
    west, _ = offset(lon, lat, half_m, 270)
    east, _ = offset(lon, lat, half_m, 90)
    _, south = offset(lon, lat, half_m, 180)
    _, north = offset(lon, lat, half_m, 0)
    return shapely.box(west, south, east, north)


@pytest.fixture
def forms(engine, settings):
    """The bundled forms (asm_site_visit, case forms), installed as `asmfield init` does."""
    from forms.demo import install_bundled

    with session_scope(engine) as s:
        install_bundled(s, blobs=FilesystemBlobStore(settings.media_path), settings=settings, hooks=build_hooks())


def import_frame(engine, settings, frame: gpd.GeoDataFrame, **kwargs) -> dict:
    """Upsert sites from a GeoDataFrame (code, name, geometry, optional kind) in one transaction."""
    from geodata import importers, upsert

    read = importers.clean(frame, kind=kwargs.pop("kind", None))
    with session_scope(engine) as s:
        return upsert.upsert_sites(s, read=read, settings=settings, blobs=FilesystemBlobStore(settings.media_path),
                                    **kwargs)


def sites_frame(rows) -> gpd.GeoDataFrame:
    """rows: (code, geometry[, kind])."""
    return gpd.GeoDataFrame({"code": [r[0] for r in rows], "name": [f"Site {r[0]}" for r in rows],
                             "kind": [r[2] if len(r) > 2 else "asm_site" for r in rows]},
                            geometry=[r[1] for r in rows], crs=4326)


def submit(engine, settings, username: str, answers: dict, *, lon=None, lat=None, form_id="asm_site_visit",
           instance_id=None, deprecated_id=None):
    """Submit one visit through sync.ingest.receive_submission; returns the stored Submission."""
    from app.models import User
    from forms.models import Form, FormVersion
    from geodata.demo import answers_to_data
    from sync.ingest import receive_submission
    from sync.submission_xml import build_instance_xml

    answers = dict(answers)
    if lon is not None:
        answers["visit_location"] = f"{lat} {lon} 1200 5"
    instance_id = instance_id or f"uuid:{uuid.uuid4()}"
    with session_scope(engine) as s:
        form = s.exec(select(Form).where(Form.xml_form_id == form_id)).one()
        version = s.get(FormVersion, form.published_version_id)
        user = s.exec(select(User).where(User.username == username)).one()
        xml = build_instance_xml(version, answers_to_data(version, answers), instance_id, deprecated_id)
        result = receive_submission(s, blobs=FilesystemBlobStore(settings.media_path), settings=settings, hooks=build_hooks(),
                                    actor=Actor(user=user, via="test"), xml=xml, files=[])
        s.flush()
        s.expunge(result.submission)
        return result.submission


def visit_answers(stage: int = 1, **changes) -> dict:
    """asm_site_visit answers (by name) with the evidence of ``stage``."""
    a = {"visit_date": "2026-11-01", "visit_type": "announced", "activity_status": "active", "minerals": ["cobalt"],
         "workers_total": 250, "legal_zone": "unknown", "cooperative_present": "no", "coop_documents_seen": ["none"],
         "state_services_present": ["none"], "children_u15_seen": 0, "children_15_17_seen": 0,
         "armed_presence": ["none"], "summary_risk": "low", "fatalities_since_last_visit": 0}
    if stage >= 2:
        a.update(cooperative_present="yes", coop_documents_seen=["coop_approval"], state_services_present=["saemape"],
                 document_photos=[{"photo_documents": "approval.jpg"}])
    a.update(changes)
    return a
