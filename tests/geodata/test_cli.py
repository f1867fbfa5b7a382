"""`asmfield sites ...` through the real command line over the test database."""

import json

import geopandas as gpd
import pytest
from typer.testing import CliRunner

from app.cli import cli
from geodata.schemas import AssurancePublic, ImportReport
from tests.geodata.conftest import KOLWEZI, offset, sites_frame, square

runner = CliRunner()


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("ASMFIELD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ASMFIELD_SECRET_KEY", settings.secret_key)
    if settings.database_url:
        monkeypatch.setenv("ASMFIELD_DATABASE_URL", settings.database_url)
    return settings


def test_import_export_recompute_and_attestation(env, tmp_path):
    path = tmp_path / "sites.geojson"
    sites_frame([("ZEA-360", square(*KOLWEZI, 2000), "zea"), ("A", square(*KOLWEZI, 100)),
                 ("A", square(*KOLWEZI, 100))]).to_file(path)
    r = runner.invoke(cli, ["sites", "import", str(path)])
    assert r.exit_code == 0, r.output
    assert "3 rows: 1 sites, 1 legal areas (layer cadastre)" in r.output  # the ZEA is a legal area, not a site
    assert "2 created" in r.output and "1 skipped" in r.output and "duplicate code" in r.output
    r = runner.invoke(cli, ["sites", "import", str(path), "--json"])
    assert (json.loads(r.output)["updated"], json.loads(r.output)["unchanged"]) == (0, 2)
    out = tmp_path / "export.gpkg"
    r = runner.invoke(cli, ["sites", "export", str(out)])
    assert r.exit_code == 0 and sorted(gpd.read_file(out)["code"]) == ["A"]
    r = runner.invoke(cli, ["sites", "recompute", "--json"])
    assert r.exit_code == 0 and json.loads(r.output) == {"remapped": 0, "stage_changes": 0}
    r = runner.invoke(cli, ["sites", "assurance", "A", "--type", "craft_verification", "--valid-until", "2027-01-31"])
    assert r.exit_code == 0 and "craft_verification" in r.output


def test_bad_files_give_a_clear_message_and_exit_1(env, tmp_path):
    junk = tmp_path / "junk.geojson"
    junk.write_bytes(b"{not json at all" * 100)
    r = runner.invoke(cli, ["sites", "import", str(junk)])
    assert r.exit_code == 1 and "cannot read the file as geodata" in r.output
    r = runner.invoke(cli, ["sites", "import", str(tmp_path / "missing.gpkg")])
    assert r.exit_code == 1 and "is not a file" in r.output
    r = runner.invoke(cli, ["sites", "export", str(tmp_path / "out.txt")])
    assert r.exit_code == 1 and ".geojson or .gpkg" in r.output


def test_generate_writes_a_synthetic_site_file(tmp_path):
    path = tmp_path / "synthetic.geojson"
    r = runner.invoke(cli, ["sites", "generate", str(path), "--sites", "20"])
    assert r.exit_code == 0
    frame = gpd.read_file(path)
    assert (frame["kind"] == "asm_site").sum() == 20 and {"zea", "pe"} <= set(frame["kind"])


def test_json_output_is_the_api_model(env, tmp_path):
    """``--json`` prints the models the API answers (geodata.schemas; issue 10)."""
    path = tmp_path / "sites.geojson"
    sites_frame([("A", square(*KOLWEZI, 100)), ("A", square(*KOLWEZI, 100))]).to_file(path)
    r = runner.invoke(cli, ["sites", "import", str(path), "--json"])
    report = json.loads(r.output)
    assert ImportReport.model_validate(report).model_dump(mode="json", exclude_unset=True) == report
    assert report["problems"] == [{"row": 2, "code": "A", "problem": "duplicate code (first on row 1)"}]
    r = runner.invoke(cli, ["sites", "assurance", "A", "--type", "egc_kumi", "--valid-until", "2027-01-31", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == AssurancePublic(code="A", assurance_type="egc_kumi",
                                                   assurance_valid_until="2027-01-31", stage=0,
                                                   stage_status="unassessed").model_dump(mode="json")


def test_a_multi_part_site_split_across_rows_is_merged_and_said_so(env, tmp_path):
    """Issue 14, item 4: same code, another polygon → one site, a multi-polygon (reported as merged)."""
    path = tmp_path / "sites.geojson"
    sites_frame([("M", square(*KOLWEZI, 100)), ("M", square(*offset(*KOLWEZI, 900), 300))]).to_file(path)
    r = runner.invoke(cli, ["sites", "import", str(path)])
    assert r.exit_code == 0, r.output
    assert "1 created, 0 updated, 0 unchanged, 0 refused, 0 retired, 0 skipped, 1 merged into a multi-polygon" in r.output
    assert "warning row 2 M: another part of the site on row 1: merged into one multi-polygon" in r.output
    r = runner.invoke(cli, ["sites", "import", str(path), "--json"])
    report = json.loads(r.output)
    assert (report["unchanged"], report["merged"], report["skipped"]) == (1, 1, 0)
    out = tmp_path / "export.geojson"
    assert runner.invoke(cli, ["sites", "export", str(out)]).exit_code == 0
    exported = gpd.read_file(out)
    assert list(exported["code"]) == ["M"] and exported.geometry.iloc[0].geom_type == "MultiPolygon"


def test_a_cadastre_as_legal_areas_then_replace_retire_and_restore(env, tmp_path):
    """Issue 14, items 2 and 3, as a GIS officer types them."""
    titles = tmp_path / "cadastre.geojson"
    gpd.GeoDataFrame({"code": ["10011", "5"], "type": ["AECP", "PE"]},
                     geometry=[square(*KOLWEZI, 300), square(*offset(*KOLWEZI, 4000), 900)], crs=4326).to_file(titles)
    r = runner.invoke(cli, ["sites", "import", str(titles), "--as", "legal-areas", "--layer", "cadastre-2024"])
    assert r.exit_code == 0, r.output
    assert "2 rows: 0 sites, 2 legal areas (layer cadastre-2024)" in r.output
    older = tmp_path / "older.geojson"
    gpd.GeoDataFrame({"code": ["5"], "type": ["PE"]}, geometry=[square(*offset(*KOLWEZI, 4000), 900)],
                     crs=4326).to_file(older)
    r = runner.invoke(cli, ["sites", "import", str(older), "--layer", "cadastre-2024", "--replace", "--dry-run"])
    assert "Retired (1):\n  legal area cadastre-2024:10011" in r.output and "Unchanged (1):" in r.output
    sites = tmp_path / "register.geojson"
    sites_frame([("KOL-1", square(*KOLWEZI, 50))]).to_file(sites)
    runner.invoke(cli, ["sites", "import", str(sites)])
    r = runner.invoke(cli, ["sites", "retire", "KOL-1"])
    assert r.exit_code == 0 and r.output.strip() == "Site KOL-1 retired"
    r = runner.invoke(cli, ["sites", "restore", "KOL-1", "--json"])
    assert json.loads(r.output) == {"code": "KOL-1", "layer": None, "status": "active", "changed": True}
    r = runner.invoke(cli, ["sites", "retire", "5", "--layer", "nope"])
    assert r.exit_code == 1 and "no legal area '5' in layer 'nope'" in r.output
    r = runner.invoke(cli, ["sites", "import", str(sites), "--layer", "Bad Layer!"])
    assert r.exit_code == 1 and "bad layer name" in r.output
