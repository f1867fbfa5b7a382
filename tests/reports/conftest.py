"""Fixtures of the export tests: a site-visit form in two versions with visits (repeats, an edit,
select_multiple answers, a site in Lualaba) and the bundled case forms with cases of two NGOs,
all stored through the real services (forms, sync ingest, geodata upsert, case ingest)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import geopandas as gpd
import pytest
import shapely

from app.blobs import FilesystemBlobStore
from app.composition import build_hooks
from app.db import session_scope
from app.identity import Actor
from forms.service import add_form
from geodata import importers, upsert
from sync.ingest import receive_submission
from sync.submission_xml import build_instance_xml
from tests.cases.conftest import bundled_xform, eligible_answers

#: A visit form: groups, a select_multiple, a geopoint and a repeat with a nested repeat; labels
#: in French and English (version 1).
EXPORT_MD = """
| survey |
| | type | name | label::Français (fr) | label::English (en) |
| | text | site_code | Code du site | Site code |
| | date | visit_date | Date de la visite | Visit date |
| | begin_group | counts | Comptages | Counts |
| | integer | workers | Travailleurs | Workers |
| | select_one yn | children_seen | Enfants vus ? | Children seen? |
| | end_group | | | |
| | select_multiple minerals | minerals | Minerais | Minerals |
| | geopoint | location | Position | Location |
| | begin_repeat | pits | Puits | Pits |
| | decimal | depth_m | Profondeur (m) | Depth (m) |
| | begin_repeat | shafts | Galeries | Shafts |
| | text | shaft_note | Note de galerie | Shaft note |
| | end_repeat | | | |
| | end_repeat | | | |
| choices |
| | list_name | name | label::Français (fr) | label::English (en) |
| | yn | yes | Oui | Yes |
| | yn | no | Non | No |
| | minerals | gold | Or | Gold |
| | minerals | cobalt | Cobalt | Cobalt |
| | minerals | copper | Cuivre | Copper |
| settings |
| | form_id | version | name |
| | export_visit | 1 | export_visit |
"""

#: Version 2 adds a remark after the visit date.
EXPORT_V2_MD = EXPORT_MD.replace("| | export_visit | 1 | export_visit |", "| | export_visit | 2 | export_visit |").replace(
    "| | date | visit_date | Date de la visite | Visit date |",
    "| | date | visit_date | Date de la visite | Visit date |\n| | text | remark | Remarque | Remark |")

ROOT = "/export_visit"
SITE_BOX = (25.4, -10.71, 25.41, -10.7)  # a small square in Lualaba


def visit(*, workers: int = 10, minerals: tuple[str, ...] = ("gold",), lat: float = -10.705, lon: float = 25.405,
          pits: list[dict[str, Any]] | None = None, remark: str | None = None, children: str = "no") -> dict[str, Any]:
    """Data (contract shape) of one export_visit submission; ``pits``: ``{"depth": 2.5, "notes": [...]}``."""
    data: dict[str, Any] = {f"{ROOT}/site_code": "KZ-1", f"{ROOT}/visit_date": "2026-03-01",
                            f"{ROOT}/counts/workers": workers, f"{ROOT}/counts/children_seen": children,
                            f"{ROOT}/minerals": list(minerals), f"{ROOT}/location": f"{lat} {lon} 900.0 4.0"}
    if remark is not None:
        data[f"{ROOT}/remark"] = remark
    if pits:
        data[f"{ROOT}/pits"] = [
            {f"{ROOT}/pits/depth_m": p["depth"],
             **({f"{ROOT}/pits/shafts": [{f"{ROOT}/pits/shafts/shaft_note": n} for n in p["notes"]]}
                if p.get("notes") else {})}
            for p in pits]
    return data


@dataclass
class ExportKit:
    """Publish forms and store submissions as a given person, each in its own committed transaction."""

    engine: Any
    settings: Any
    world: Any
    versions: dict[str, Any] = field(default_factory=dict)

    @property
    def blobs(self) -> FilesystemBlobStore:
        return FilesystemBlobStore(self.settings.media_path)

    def publish(self, content: bytes | str, *, filename: str = "form.md", kind: str = "site_visit"):  # noqa: ANN201
        with session_scope(self.engine) as s:
            result = add_form(s, blobs=self.blobs, settings=self.settings, actor=None,
                              content=content.encode() if isinstance(content, str) else content,
                              filename=filename, kind=kind)
            s.expunge(result.version)
        self.versions[f"{result.form.xml_form_id}:{result.version.version}"] = result.version
        return result.version

    def submit(self, person: Any, version: Any, data: dict[str, Any], *, deprecated_id: str | None = None) -> str:
        """Store a submission through sync's ingest; its instanceID."""
        instance_id = f"uuid:{uuid.uuid4()}"
        xml = build_instance_xml(version, data, instance_id, deprecated_id=deprecated_id)
        with session_scope(self.engine) as s:
            receive_submission(s, blobs=self.blobs, settings=self.settings, hooks=build_hooks(),
                               actor=Actor(user=person.user), xml=xml, files=[])
        return instance_id

    def add_site(self, code: str = "KZ-1", name: str = "Kasulo 1") -> None:
        frame = gpd.GeoDataFrame({"code": [code], "name": [name], "kind": ["asm_site"]},
                                 geometry=[shapely.box(*SITE_BOX)], crs=4326)
        with session_scope(self.engine) as s:
            upsert.upsert_sites(s, read=importers.clean(frame), settings=self.settings, blobs=self.blobs)


@pytest.fixture
def kit(engine, settings, world) -> ExportKit:
    return ExportKit(engine=engine, settings=settings, world=world)


@pytest.fixture
def visits(kit: ExportKit) -> dict[str, Any]:
    """export_visit v1 and v2 with four visits: the monitor's two on v1 (one with pits and shafts,
    then edited), monitor2's one on v2, the coordinator's one on v2 outside any site."""
    kit.add_site()
    v1 = kit.publish(EXPORT_MD)
    first = kit.submit(kit.world.monitor, v1, visit(workers=12, minerals=("gold", "copper"), children="yes",
                                                    pits=[{"depth": 2.5, "notes": ["wet", "narrow"]}, {"depth": 4.0}]))
    edited = kit.submit(kit.world.monitor, v1, visit(workers=13, minerals=("gold", "copper"), children="yes",
                                                     pits=[{"depth": 2.5, "notes": ["wet", "narrow"]}, {"depth": 4.0}]),
                        deprecated_id=first)
    second = kit.submit(kit.world.monitor, v1, visit(workers=5, minerals=()))
    v2 = kit.publish(EXPORT_V2_MD)
    third = kit.submit(kit.world.monitor2, v2, visit(workers=7, minerals=("cobalt",), remark="Été sec, accès difficile",
                                                     pits=[{"depth": 1.0, "notes": ["=1+1"]}]))
    outside = kit.submit(kit.world.coordinator, v2, visit(workers=1, lat=-2.5, lon=28.8))
    return {"v1": v1, "v2": v2, "first": first, "edited": edited, "second": second, "third": third,
            "outside": outside}


def intake_answers(**overrides: Any) -> dict[str, Any]:
    """The cases tests' eligible intake (a 13-year-old carrying ore, every consent given), taken in last month."""
    return eligible_answers(**{"intake_date": (date.today() - timedelta(days=30)).isoformat(), **overrides})


@pytest.fixture
def intakes(kit: ExportKit) -> dict[str, str]:
    """The bundled case intake form with three intakes: one by NGO A's caseworker, one by NGO B's,
    one by NGO A's without consent to statistics; their instanceIDs."""
    version = kit.publish(bundled_xform("child_case_intake"), filename="child_case_intake.xml", kind="case_intake")
    paths = {f["name"]: f["path"] for f in version.fields if f.get("kind") == "field"}

    def intake(person: Any, **overrides: Any) -> str:
        return kit.submit(person, version, {paths[k]: v for k, v in intake_answers(**overrides).items()})

    w = kit.world
    return {"a": intake(w.caseworker_a, child_given_name="Amani"),
            "b": intake(w.caseworker_b, child_given_name="Bahati"),
            "a_no_stats": intake(w.caseworker_a, child_given_name="Chausiku", consent_reporting="no")}
