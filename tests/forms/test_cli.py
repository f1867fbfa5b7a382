"""`asmfield forms ...` against a real database (settings come from the environment, as in production)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli import cli
from forms.demo import BUNDLED
from tests.forms.factories import simple_form

runner = CliRunner()


@pytest.fixture
def env(settings, monkeypatch):
    monkeypatch.setenv("ASMFIELD_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ASMFIELD_SECRET_KEY", settings.secret)
    monkeypatch.setenv("ASMFIELD_DATABASE_URL", settings.db_url)
    return settings


def run(*args: str) -> dict | list:
    result = runner.invoke(cli, ["forms", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_add_list_close_open(env, tmp_path):
    path = tmp_path / "simple.md"
    path.write_bytes(simple_form(version="4"))
    added = run("add", str(path), "--kind", "site_visit", "--json")
    assert (added["xml_form_id"], added["version"], added["created"]) == ("simple", "4", True)
    assert run("list", "--json")[0]["state"] == "open"
    assert run("close", "simple", "--json")["state"] == "closed"
    assert run("list", "--json")[0]["state"] == "closed"
    assert run("open", "simple", "--json")["state"] == "open"


def test_add_with_media_and_errors_exit_1(env, tmp_path):
    form = tmp_path / "villages.md"
    form.write_text("| survey |\n| | type | name | label |\n| | select_one_from_file villages.csv | v | V |\n"
                    "| settings |\n| | form_id | version |\n| | villages | 1 |\n")
    csv = tmp_path / "villages.csv"
    csv.write_text("name,label\na,A\n")
    added = run("add", str(form), "--media", str(csv), "--json")
    assert added["media"] == ["villages.csv"] and added["missing_media"] == []
    bad = tmp_path / "bad.md"
    bad.write_text("| survey |\n| | type | name | label |\n| | nonsense | v | V |\n")
    result = runner.invoke(cli, ["forms", "add", str(bad)])
    assert result.exit_code == 1 and "nonsense" in result.output
    result = runner.invoke(cli, ["forms", "close", "no_such_form"])
    assert result.exit_code == 1 and "no_such_form" in result.output


def test_markdown_to_xlsx_gives_the_same_xform(env, tmp_path):
    target = tmp_path / "asm_site_visit.xlsx"
    result = runner.invoke(cli, ["forms", "xlsx", str(BUNDLED / "asm_site_visit.md"), str(target)])
    assert result.exit_code == 0, result.output
    first = run("add", str(BUNDLED / "asm_site_visit.md"), "--json")
    again = run("add", str(target), "--json")
    assert first["created"] and not again["created"]
    assert again["md5"] == first["md5"]
