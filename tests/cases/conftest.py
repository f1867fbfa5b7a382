"""Case fixtures: the bundled case forms uploaded through the forms service, and intakes and
follow-ups submitted through the real ingest (``sync.ingest.receive_submission``)."""

from __future__ import annotations

import functools
import io
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from PIL import Image
from sqlmodel import select

from app.blobs import FilesystemBlobStore
from app.composition import build_hooks
from app.db import session_scope
from app.identity import Actor
from app.settings import Settings
from cases.models import CaseSubmission, ChildCase
from geodata import importers, upsert
from sync.media import IncomingFile
from sync.models import Submission

BUNDLED = Path(__file__).resolve().parents[2] / "forms" / "bundled"
FORMS = {"child_case_intake": "case_intake", "child_case_followup": "case_followup"}


@functools.cache
def bundled_xform(form_id: str) -> bytes:
    """The bundled markdown XLSForm converted once per test run (pyxform takes a second)."""
    from forms.xlsform import convert

    return convert((BUNDLED / f"{form_id}.md").read_text(), kind="md").xform.encode("utf-8")


def eligible_answers(**overrides: Any) -> dict[str, Any]:
    """An eligible intake: a 13-year-old carrying ore, every consent given."""
    answers = {
        "intake_date": (date.today() - timedelta(days=400)).isoformat(), "identified_by": "monitor_observation",
        "consent_giver": "caregiver", "consent_services": "yes", "consent_share_partner": "yes",
        "consent_reporting": "yes", "consent_photo": "no", "immediate_danger": "no",
        "child_given_name": "Mwamba", "child_family_name": "Kabeya", "sex": "male", "dob_known": "no",
        "age_estimated_years": 13, "age_basis": "caregiver_statement", "caregiver_relation": "mother",
        "caregiver_phone": "+243970000001", "residence_area": "kanina", "activities": ["carrying_ore"],
        "hours_per_day": 6, "forced_or_trafficked": ["none"], "school_status": "dropped_out",
        "needs": ["school_kit"], "monitor_notes": "found carrying sacks at the washing pond",
    }
    answers.update(overrides)
    return {k: v for k, v in answers.items() if v is not None}


@dataclass
class CaseKit:
    """Submit case forms as a given person, each call in its own committed transaction."""

    engine: Any
    settings: Settings
    world: Any
    versions: dict[str, Any] = field(default_factory=dict)

    @property
    def blobs(self) -> FilesystemBlobStore:
        return FilesystemBlobStore(self.settings.media_path)

    def install_forms(self) -> None:
        from forms.service import add_form

        with session_scope(self.engine) as s:
            for form_id, kind in FORMS.items():
                result = add_form(s, blobs=self.blobs, settings=self.settings, actor=None,
                                  content=bundled_xform(form_id), filename=f"{form_id}.xml", kind=kind)
                self.versions[form_id] = result.version

    def submit(self, person: Any, form_id: str, answers: dict[str, Any], *, instance_id: str | None = None,
               deprecated_id: str | None = None, files: list[Any] | None = None) -> Submission:
        from sync.ingest import receive_submission
        from sync.submission_xml import build_instance_xml

        version = self.versions[form_id]
        paths = {f["name"]: f["path"] for f in version.fields if f.get("kind") == "field"}
        data = {paths[name]: value for name, value in answers.items()}
        instance_id = instance_id or f"uuid:{uuid.uuid4()}"
        xml = build_instance_xml(version, data, instance_id, deprecated_id=deprecated_id)
        with session_scope(self.engine) as s:
            result = receive_submission(s, blobs=self.blobs, settings=self.settings, hooks=build_hooks(), actor=Actor(user=person.user),
                                        xml=xml, files=files or [])
            return result.submission

    def intake(self, person: Any, **overrides: Any) -> ChildCase | None:
        """Submit an intake; the case it opened (None when it was flagged instead)."""
        sub = self.submit(person, "child_case_intake", eligible_answers(**overrides))
        return self.case_of(sub)

    def followup(self, person: Any, code: str, **answers: Any) -> Submission:
        return self.submit(person, "child_case_followup", {"case_id": code, **answers})

    def case_of(self, sub: Submission) -> ChildCase | None:
        with session_scope(self.engine) as s:
            link = s.exec(select(CaseSubmission).where(CaseSubmission.submission_id == sub.id)).first()
            return s.get(ChildCase, link.case_id) if link and link.case_id else None

    def reload(self, code: str) -> ChildCase:
        with session_scope(self.engine) as s:
            return s.exec(select(ChildCase).where(ChildCase.code == code)).one()

    def submission(self, sub: Submission) -> Submission:
        with session_scope(self.engine) as s:
            return s.get(Submission, sub.id)


@pytest.fixture
def kit(engine, settings, world) -> CaseKit:
    k = CaseKit(engine=engine, settings=settings, world=world)
    k.install_forms()
    return k


#: A point inside each province the case tests name (sites get their province from where they are).
PROVINCE_POINTS = {"Lualaba": (25.4, -10.7), "Haut-Katanga": (27.48, -11.66)}


def add_site(engine, settings, code="KZ-0042", province="Lualaba"):
    """A mining site (a small square in ``province``) for intakes that name it, imported through geodata's upsert."""
    lon, lat = PROVINCE_POINTS[province]
    frame = gpd.GeoDataFrame({"code": [code], "name": ["Kasulo pit 42"], "kind": ["asm_site"]},
                             geometry=[shapely.box(lon, lat - 0.01, lon + 0.01, lat)], crs=4326)
    with session_scope(engine) as s:
        upsert.upsert_sites(s, read=importers.clean(frame), settings=settings,
                            blobs=FilesystemBlobStore(settings.media_path))


def photo_file(tmp_path, colour=(120, 80, 40)):
    """A small JPEG as an uploaded ``child.jpg``."""
    path = tmp_path / "child.jpg"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, "JPEG")
    path.write_bytes(buf.getvalue())
    return IncomingFile(name="child.jpg", path=path, size=path.stat().st_size, media_type="image/jpeg")
