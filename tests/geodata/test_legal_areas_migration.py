"""Issue 14, item 2: geodata_0003 moves the legal polygons an older server stored as sites."""

from __future__ import annotations

import json

from alembic import command
from sqlalchemy import text

from app.db import alembic_config, make_engine, migrate
from app.settings import Settings

ROW = ("INSERT INTO site (code, name, kind, minerals, geometry, min_lon, min_lat, max_lon, max_lat, properties, "
       "zea_codes, permit_codes, stage, last_known_stage, stage_status, red_flag, visit_count, created_at, updated_at) "
       "VALUES (:code, :code, :kind, '[]', :geometry, 25, -11, 26, -10, :props, '[]', '[]', 0, 0, 'unassessed', 0, 0, "
       "'2026-01-01 00:00:00', '2026-01-01 00:00:00')")
GEOMETRY = json.dumps({"type": "Polygon", "coordinates": [[[25, -11], [26, -11], [26, -10], [25, -10], [25, -11]]]})


def test_zea_and_permits_stored_as_sites_become_legal_areas_unless_something_refers_to_them(tmp_path):
    engine = make_engine(Settings(data_dir=tmp_path, secret_key="k" * 32))
    migrate(engine)
    command.downgrade(alembic_config(engine), "geodata@geodata_0002")
    with engine.begin() as conn:
        for code, kind in (("ZEA-1", "zea"), ("PE-5", "pe"), ("PR-7", "pr"), ("KOL-1", "asm_site"), ("10011", "other")):
            conn.execute(text(ROW), {"code": code, "kind": kind, "geometry": GEOMETRY,
                                     "props": json.dumps({"holder": "GECAMINES"})})
        pr = conn.execute(text("SELECT id FROM site WHERE code = 'PR-7'")).scalar()
        conn.execute(text("INSERT INTO sitestage (site_id, stage, last_known_stage, status, red_flag, effective_on, "
                          "ladder_version, reasons, computed_at) VALUES (:id, 1, 1, 'assessed', 0, '2026-01-02', "
                          "'v1', '[]', '2026-01-02 00:00:00')"), {"id": pr})
    migrate(engine)
    with engine.connect() as conn:
        sites = dict(conn.execute(text("SELECT code, status FROM site ORDER BY code")).all())
        legal = {r[0]: r[1:] for r in conn.execute(text("SELECT code, layer, kind, title_type, properties FROM legalarea"))}
    assert sites == {"10011": "active", "KOL-1": "active", "PR-7": "active"}  # PR-7 has stage history: it stays
    assert {code: row[:3] for code, row in legal.items()} == {
        "ZEA-1": ("cadastre", "zea", "ZEA"), "PE-5": ("cadastre", "pe", "PE"), "PR-7": ("cadastre", "pr", "PR")}
    assert json.loads(legal["PE-5"][3]) == {"holder": "GECAMINES"}
    engine.dispose()
