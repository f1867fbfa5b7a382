"""`asmfield export FORM --format … --out PATH` through the real command line over the test database:
files pandas and geopandas read, filters and options passed through, refusals as one line."""

from __future__ import annotations

import json
import zipfile

import geopandas as gpd
import pandas as pd
import pytest
from sqlmodel import select
from typer.testing import CliRunner

from app.cli import cli
from app.db import session_scope
from app.models import AuditLog

runner = CliRunner()


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("ASMFIELD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ASMFIELD_SECRET_KEY", settings.secret_key)
    if settings.database_url:
        monkeypatch.setenv("ASMFIELD_DATABASE_URL", settings.database_url)
    return settings


def test_export_writes_files_pandas_and_geopandas_read(env, kit, visits, tmp_path) -> None:
    out = tmp_path / "visits.zip"
    result = runner.invoke(cli, ["export", "export_visit", "--out", str(out), "--format", "csv", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"file": str(out), "format": "csv", "rows": 4,
                                                                  "bytes": out.stat().st_size}
    with zipfile.ZipFile(out) as z:
        main = pd.read_csv(z.open("export_visit.csv"), encoding="utf-8-sig")
        pits = pd.read_csv(z.open("export_visit-pits.csv"), encoding="utf-8-sig")
    assert set(main["_uuid"]) == {visits["edited"], visits["second"], visits["third"], visits["outside"]}
    assert set(pits["_parent_uuid"]) <= set(main["_uuid"])

    out = tmp_path / "visits.gpkg"
    result = runner.invoke(cli, ["export", "export_visit", "-f", "gpkg", "-o", str(out), "--since", "2020-01-01",
                                 "--min-version", "2", "--headers", "labels", "--language", "en"])
    assert result.exit_code == 0, result.output
    assert "Wrote 2 submission(s) of export_visit" in result.stdout
    frame = gpd.read_file(out)
    assert set(frame["_uuid"]) == {visits["third"], visits["outside"]} and "Remark" in frame.columns
    out = tmp_path / "photos.zip"
    result = runner.invoke(cli, ["export", "export_visit", "--format", "media", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(out) as z:  # these visits have no photos: the index alone
        assert z.namelist() == ["media.csv"]
    assert not list(tmp_path.glob("*.part"))
    with session_scope(kit.engine) as session:
        entry = session.exec(select(AuditLog).where(AuditLog.action == "export.create")).all()[-1]
    assert entry.actor_label.startswith("cli:") and entry.actor_user_id is None


def test_export_refusals_are_one_line_and_leave_no_file(env, kit, visits, tmp_path) -> None:
    out = tmp_path / "x.zip"
    result = runner.invoke(cli, ["export", "export_visit", "--out", str(out), "--format", "pdf"])
    assert result.exit_code == 1 and "format" in result.stderr and not out.exists()
    result = runner.invoke(cli, ["export", "nope", "--out", str(out)])
    assert result.exit_code == 1 and "nope" in result.stderr and not out.exists()
