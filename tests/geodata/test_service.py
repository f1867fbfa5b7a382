"""Site import (upsert by code), bulk re-mapping, published media, attestation, recompute, stats."""

from sqlmodel import Session, select

from app.blobs import FilesystemBlobStore
from app.composition import build_hooks
from app.db import session_scope
from forms.models import FormMedia
from geodata import read, stages
from geodata.models import Site
from sync.models import Submission
from tests.geodata.conftest import KOLWEZI, import_frame, offset, sites_frame, square, submit, visit_answers

SITE = square(*KOLWEZI, 100)


def media_hashes(engine):
    with Session(engine) as s:
        return {m.filename: m.md5 for m in s.exec(select(FormMedia).where(FormMedia.filename.in_(("sites.csv", "sites.geojson"))))}


def test_import_upserts_by_code_and_derives_province_and_legal_overlap(engine, settings, world, forms):
    zea = square(*KOLWEZI, 2000)
    report = import_frame(engine, settings, sites_frame([("ZEA-360", zea, "zea"), ("A", SITE)]))
    assert (report["created"], report["updated"]) == (2, 0)
    again = import_frame(engine, settings, sites_frame([("A", square(*KOLWEZI, 150))]))
    assert (again["created"], again["updated"]) == (0, 1)
    with Session(engine) as s:
        a = s.exec(select(Site).where(Site.code == "A")).one()
    assert (a.province, a.province_iso, a.zea_codes) == ("Lualaba", "CD-LU", ["ZEA-360"])
    assert abs(a.area_m2 - 300 * 300) / 90000 < 0.01


def test_site_list_media_change_when_sites_change(engine, settings, world, forms):
    import_frame(engine, settings, sites_frame([("A", SITE)]))
    first = media_hashes(engine)
    assert set(first) == {"sites.csv", "sites.geojson"}
    import_frame(engine, settings, sites_frame([("A", SITE)]))
    assert media_hashes(engine) == first  # same sites, same files
    import_frame(engine, settings, sites_frame([("B", square(*offset(*KOLWEZI, 5000), 100))]))
    second = media_hashes(engine)
    assert second["sites.csv"] != first["sites.csv"] and second["sites.geojson"] != first["sites.geojson"]


def test_media_content_is_what_collect_reads(engine, settings, world, forms):
    import json

    from geodata import media

    import_frame(engine, settings, sites_frame([("A", SITE), ("ZEA-1", square(*KOLWEZI, 900), "zea")]))
    with Session(engine) as s:
        collection = json.loads(media.sites_geojson(s))
        csv_text = media.sites_csv(s).decode()
    assert [f["properties"]["id"] for f in collection["features"]] == ["A"]  # ZEA are not choices
    assert collection["features"][0]["properties"]["title"] == "Site A"
    assert collection["features"][0]["geometry"]["type"] == "Polygon"
    assert csv_text.splitlines()[0].startswith("name,label,")
    assert csv_text.splitlines()[1].startswith("A,Site A,Lualaba,")


def test_editing_sites_remaps_every_submission_in_bulk(engine, settings, world, forms):
    far = offset(*KOLWEZI, 2000)
    import_frame(engine, settings, sites_frame([("A", SITE)]))
    subs = [submit(engine, settings, "monitor", visit_answers(2), lon=far[0], lat=far[1]) for _ in range(3)]
    assert {s.site_match for s in subs} == {"unmapped"}
    import_frame(engine, settings, sites_frame([("B", square(*far, 100))]))  # a new site where they were
    with Session(engine) as s:
        rows = s.exec(select(Submission).where(Submission.id.in_([x.id for x in subs]))).all()
        b = s.exec(select(Site).where(Site.code == "B")).one()
    assert {(r.site_id, r.site_match) for r in rows} == {(b.id, "inside")}
    assert (b.visit_count, b.stage) == (3, 2)


def test_attestation_lifts_a_stage_5_site_to_6_and_can_be_cleared(engine, settings, world, forms):
    from datetime import date

    import_frame(engine, settings, sites_frame([("ZEA-360", square(*KOLWEZI, 2000), "zea"), ("A", SITE)]))
    full = visit_answers(2, legal_zone="inside_zea", zea_or_title_ref="ZEA 360",
                         coop_documents_seen=["coop_approval", "site_authorisation"], access_control="fenced_badge",
                         miner_cards_share="over_75", traceability_in_place="coop_register",
                         programmes_active=["better_mining"], grievance_mechanism="known_used", ppe_observed="over_75",
                         corrective_actions_status="all_done")
    submit(engine, settings, "monitor", {**full, "visit_date": "2026-07-01"}, lon=KOLWEZI[0], lat=KOLWEZI[1])
    submit(engine, settings, "monitor", {**full, "visit_date": "2026-10-01"}, lon=KOLWEZI[0], lat=KOLWEZI[1])
    with session_scope(engine) as s:
        assert stages.require_site(s, "A").stage == 5
        site = stages.set_assurance(s, code="A", assurance_type="craft_verification", valid_until=date(2027, 12, 31))
        assert site.stage == 6
        assert stages.set_assurance(s, code="A", assurance_type=None, valid_until=None).stage == 5


def test_recompute_all_and_stats(engine, settings, world, forms):
    import_frame(engine, settings, sites_frame([("A", SITE), ("B", square(*offset(*KOLWEZI, 5000), 100))]))
    submit(engine, settings, "monitor", visit_answers(2, visit_date="2026-09-15"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    with session_scope(engine) as s:
        result = stages.recompute_all(s, settings=settings)
        stats = read.stats(s, months=3).model_dump()
    assert result == {"remapped": 0, "stage_changes": 0}
    assert stats["by_stage"]["2"] == 1 and stats["by_stage"]["0"] == 1
    assert stats["by_province"]["Lualaba"]["2"] == 1
    assert stats["monthly"][-1]["stages"]["2"] == 1
    assert len(stats["monthly"]) == 3


def test_demo_data_is_deterministic_and_idempotent(engine, settings, world, forms):
    from geodata import demo

    with session_scope(engine) as s:
        first = demo.load(s, settings, hooks=build_hooks(), blobs=FilesystemBlobStore(settings.media_path), n_sites=12, visits_per_site=(1, 2), username="monitor")
    with session_scope(engine) as s:
        second = demo.load(s, settings, hooks=build_hooks(), blobs=FilesystemBlobStore(settings.media_path), n_sites=12, visits_per_site=(1, 2), username="monitor")
    assert first["visits"] > 0 and first["created"] == first["sites"] + first["legal_polygons"]
    assert (second["created"], second["visits"]) == (0, 0)
    with Session(engine) as s:
        stored = s.exec(select(Submission)).all()
    assert len(stored) == first["visits"] and all(x.site_id for x in stored if x.site_match != "unmapped")


def test_large_imports_and_restaging_take_the_many_sites_path(engine, settings, world, forms):
    import numpy as np

    lons = KOLWEZI[0] + np.arange(1100) * 0.01
    rows = [(f"S{i:04d}", square(float(lon), KOLWEZI[1], 50)) for i, lon in enumerate(lons)]
    assert import_frame(engine, settings, sites_frame(rows))["created"] == 1100
    submit(engine, settings, "monitor", visit_answers(2, visit_date="2026-10-01"), lon=KOLWEZI[0], lat=KOLWEZI[1])
    again = import_frame(engine, settings, sites_frame(rows))
    assert (again["unchanged"], again["updated"], again["created"]) == (1100, 0, 0)
    with session_scope(engine) as s:
        ids = list(s.exec(select(Site.id)))
        s.exec(select(Site).where(Site.code == "S0000")).one().stage = 0  # forget the stage
        s.flush()
        assert stages.recompute_stages(s, ids) == 1
        assert stages.require_site(s, "S0000").stage == 2
