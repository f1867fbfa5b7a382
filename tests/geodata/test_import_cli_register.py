"""Importing a register with one row per visit through `asmfield sites import` and the API: --latest-by, --history, the
whole-file remark and --progress (issue 14, items 5 and 8), over the test database."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("ASMFIELD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ASMFIELD_SECRET_KEY", settings.secret_key)
    if settings.database_url:
        monkeypatch.setenv("ASMFIELD_DATABASE_URL", settings.database_url)
    return settings


def test_a_register_keeps_the_latest_visits_and_their_history(env, tmp_path):
    path = tmp_path / "registre.csv"
    pd.DataFrame({"pcode": ["K-1", "K-2", "K-1", "K-1"], "passage": ["02/03/2021", "2022-01-05", "10/10/2023", ""],
                  "etat": ["actif", "actif", "fermé", "?"], "longitude": [25.47, 25.50, 25.471, 25.472],
                  "latitude": [-10.72, -10.70, -10.72, -10.72]}).to_csv(path, index=False, sep=";")

    r = runner.invoke(cli, ["sites", "import", str(path), "--latest-by", "passage", "--history", "--progress"])

    assert r.exit_code == 0, r.output
    assert ("  warning: 4 rows → 2 sites: 2 older rows of repeated site codes superseded by the latest row by "
            "passage (kept as history); 1 rows without a readable passage ranked oldest") in r.output
    assert "2 older rows kept as site observations" in r.output
    r = runner.invoke(cli, ["sites", "import", str(path), "--latest-by", "PASSAGE", "--json"])
    report = json.loads(r.output)
    assert (report["unchanged"], report["skipped"]) == (2, 0)
    r = runner.invoke(cli, ["sites", "import", str(path), "--latest-by", "visite"])
    assert r.exit_code == 1 and "latest_by names column 'visite'" in r.output


def test_the_api_takes_latest_by_and_history_and_refuses_a_bad_crs(client, world):
    h = world.coordinator.bearer
    register = pd.DataFrame({"code": ["K-1", "K-1", "K-2"], "relevé": ["45000", "44000", "45100"],
                             "lon": [25.47, 25.48, 25.50], "lat": [-10.72, -10.72, -10.70]}).to_csv(index=False)
    upload = {"file": ("registre.csv", register.encode(), "text/csv")}

    r = client.post("/api/v1/sites/import", headers=h, files=upload, data={"latest_by": "relevé", "history": "true"})

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["created"], body["observations"]) == (2, 1)
    assert body["warnings"][0]["row"] == 0 and body["warnings"][0]["warning"].startswith("3 rows → 2 sites")
    r = client.post("/api/v1/sites/import", headers=h, files=upload, data={"crs": "EPSG:12345678"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "sites.bad_crs"
