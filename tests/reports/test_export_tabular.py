"""The CSV zip opened with pandas and the workbook with openpyxl, compared with the stored
submissions (repeats and nested repeats joined on their keys); field names or labels, choice
values or labels in French and English, split select_multiple, the edit history, the filters."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime
from types import SimpleNamespace

import pandas as pd
import pytest
from openpyxl import load_workbook
from sqlmodel import Session, col, select

from app.composition import build_hooks
from app.db import session_scope
from app.identity import Actor
from reports.exports import FORMATS
from reports.exports.rows import Table, export_plan, iter_records, merge_fields
from reports.exports.spec import ExportSpec, Filters, Options, parse_spec
from reports.exports.tabular import sheet_names
from sync import review
from sync.models import Submission
from tests.reports.conftest import ROOT


def zip_tables(client, person, query: str = "") -> dict[str, pd.DataFrame]:  # noqa: ANN001
    response = client.get(f"/api/v1/forms/export_visit/export.zip{query}", headers=person.bearer)
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    for name in archive.namelist():
        assert archive.read(name).startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel shows the accents
    return {name: pd.read_csv(archive.open(name), encoding="utf-8-sig", keep_default_na=False)
            for name in archive.namelist()}


def stored(engine, *, current: bool = True) -> dict[str, Submission]:  # noqa: ANN001
    with Session(engine) as s:
        query = select(Submission).order_by(col(Submission.id))
        if current:
            query = query.where(Submission.current.is_(True))
        return {sub.instance_id: sub for sub in s.exec(query)}


def test_the_csv_zip_joins_repeats_on_their_keys_and_matches_the_stored_data(client, kit, visits, engine):
    tables = zip_tables(client, kit.world.coordinator)
    assert sorted(tables) == ["export_visit-pits-shafts.csv", "export_visit-pits.csv", "export_visit.csv"]
    main, pits, shafts = (tables[n] for n in ("export_visit.csv", "export_visit-pits.csv",
                                              "export_visit-pits-shafts.csv"))
    subs = stored(engine)
    assert list(main["_uuid"]) == list(subs)  # one row per current submission, in the order received
    for _, row in main.iterrows():
        data = subs[row["_uuid"]].data
        assert row["counts-workers"] == data[f"{ROOT}/counts/workers"]
        assert row["minerals"] == " ".join(data.get(f"{ROOT}/minerals", []))
        assert row["remark"] == data.get(f"{ROOT}/remark", "")
        lat, lon = (float(v) for v in data[f"{ROOT}/location"].split()[:2])
        assert (row["location-latitude"], row["location-longitude"]) == (lat, lon)
    assert main.set_index("_uuid").loc[visits["third"], "remark"] == "Été sec, accès difficile"
    # the mapped site and who sent what
    by_uuid = main.set_index("_uuid")
    assert by_uuid.loc[visits["edited"], ["_site_code", "_site_name", "_submitter", "_version"]].tolist() == [
        "KZ-1", "Kasulo 1", "monitor", 1]
    assert by_uuid.loc[visits["outside"], "_site_code"] == ""
    # repeats: join on the keys, as an analyst would, and compare with the stored repeat instances
    joined = pits.merge(main, left_on="_parent_uuid", right_on="_uuid", suffixes=("", "_main"))
    assert len(joined) == len(pits) == 3
    for uuid, group in joined.groupby("_parent_uuid"):
        stored_pits = subs[uuid].data[f"{ROOT}/pits"]
        assert list(group["pits-depth_m"]) == [p[f"{ROOT}/pits/depth_m"] for p in stored_pits]
        assert list(group["_index"]) == list(range(1, len(stored_pits) + 1))
    notes = shafts.merge(pits, left_on="_parent_uuid", right_on="_uuid")
    expected = [(uuid, i, s[f"{ROOT}/pits/shafts/shaft_note"]) for uuid, sub in subs.items()
                for i, p in enumerate(sub.data.get(f"{ROOT}/pits", []), start=1) for s in p.get(f"{ROOT}/pits/shafts", [])]
    assert list(zip(notes["_parent_uuid_y"], notes["_index_y"], notes["pits-shafts-shaft_note"], strict=True)) == expected
    assert "=1+1" in list(notes["pits-shafts-shaft_note"])  # text stays text


def test_the_workbook_has_a_sheet_per_table_with_typed_cells_and_no_formulas(client, kit, visits):
    response = client.get("/api/v1/forms/export_visit/export.xlsx", headers=kit.world.coordinator.basic)
    assert response.status_code == 200
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["export_visit", "pits", "pits-shafts"]
    main = book["export_visit"]
    header = [c.value for c in main[1]]
    rows = [dict(zip(header, (c.value for c in r), strict=True)) for r in main.iter_rows(min_row=2)]
    assert [r["_uuid"] for r in rows] == [visits["edited"], visits["second"], visits["third"], visits["outside"]]
    assert [r["counts-workers"] for r in rows] == [13, 5, 7, 1]  # numbers, not text
    assert rows[0]["visit_date"] == datetime(2026, 3, 1)  # a date Excel sorts and filters as a date
    assert rows[0]["_submitted_at"].tzinfo is None  # UTC, as Excel has no time zones
    assert rows[2]["remark"] == "Été sec, accès difficile"
    note = next(c for r in book["pits-shafts"].iter_rows(min_row=2) for c in r if c.value == "=1+1")
    assert note.data_type == "s"  # a text answer starting with "=" is never a formula


def test_labels_choice_labels_in_french_and_english_and_split_select_multiple(client, kit, visits):
    fr = zip_tables(client, kit.world.coordinator, "?headers=labels&choices=labels&split_multiple=true")["export_visit.csv"]
    assert {"Travailleurs", "Enfants vus ?", "Minerais", "Minerais/Or", "Minerais/Cuivre", "Position (latitude)"} <= set(fr.columns)
    row = fr.set_index("_uuid").loc[visits["edited"]]
    assert (row["Enfants vus ?"], row["Minerais"], row["Minerais/Or"], row["Minerais/Cobalt"]) == ("Oui", "Or; Cuivre", "1", "0")
    en = zip_tables(client, kit.world.coordinator, "?headers=labels&choices=labels&language=en")["export_visit.csv"]
    row = en.set_index("_uuid").loc[visits["edited"]]
    assert (row["Children seen?"], row["Minerals"]) == ("Yes", "Gold; Copper")
    names = zip_tables(client, kit.world.coordinator, "?split_multiple=1")["export_visit.csv"].set_index("_uuid")
    assert names.loc[visits["edited"], ["minerals", "minerals/gold", "minerals/cobalt", "minerals/copper"]].tolist() == [
        "gold copper", "1", "0", "1"]
    assert names.loc[visits["second"], "minerals/gold"] == ""  # no answer: no flags


def test_the_edit_history_adds_superseded_versions_with_what_replaced_them(client, kit, visits, engine):
    tables = zip_tables(client, kit.world.coordinator, "?include_edits=true")
    main = tables["export_visit.csv"].set_index("_uuid")
    assert set(main.index) == set(stored(engine, current=False))
    assert main.loc[visits["first"], "_superseded_by"] == visits["edited"]
    assert main.loc[visits["edited"], "_superseded_by"] == ""
    assert (main.loc[visits["first"], "counts-workers"], main.loc[visits["edited"], "counts-workers"]) == (12, 13)
    assert set(tables["export_visit-pits.csv"]["_parent_uuid"]) == {visits["first"], visits["edited"], visits["third"]}
    assert "_superseded_by" not in zip_tables(client, kit.world.coordinator)["export_visit.csv"].columns


def test_filters_versions_site_province_review_state_and_dates(client, kit, visits, engine):
    def uuids(query: str) -> set[str]:
        return set(zip_tables(client, kit.world.coordinator, query)["export_visit.csv"]["_uuid"])

    assert uuids("?min_version=2") == {visits["third"], visits["outside"]}
    assert uuids("?max_version=1") == {visits["edited"], visits["second"]}
    assert uuids("?site=KZ-1") == {visits["edited"], visits["second"], visits["third"]}
    assert uuids("?province=lualaba") == uuids("?province=CD-LU") == uuids("?site=KZ-1")
    with session_scope(engine) as s:
        review.set_state(s, actor=Actor(user=kit.world.coordinator.user), hooks=build_hooks(),
                         instance_id=visits["second"], state="approved")
    assert uuids("?review_state=approved") == {visits["second"]}
    assert uuids("?since=2000-01-01&until=2000-12-31") == set()
    assert len(uuids("?until=2999-01-01")) == 4
    for query, field in (("?min_version=7", "min_version"), ("?site=NOPE", "site"), ("?since=yesterday", "since"),
                         ("?province=Atlantis", "province"), ("?review_state=lost", "review_state"),
                         ("?min_version=2&max_version=1", "min_version"), ("?headers=both", "headers")):
        response = client.get(f"/api/v1/forms/export_visit/export.zip{query}", headers=kit.world.coordinator.bearer)
        assert response.status_code == 422, query
        assert response.json()["error"]["details"]["field"] == field
    assert client.get("/api/v1/forms/nope/export.csv", headers=kit.world.coordinator.bearer).status_code == 404


def test_rows_read_a_chunk_at_a_time_are_the_rows_read_at_once(kit, visits, engine):
    with Session(engine) as s:
        plan = export_plan(s, Actor(user=kit.world.admin.user), build_hooks(), ExportSpec("export_visit"),
                           audited=False)
        at_once = list(iter_records(s, plan))
        done: list[int] = []
        assert list(iter_records(s, plan, chunk_rows=1, progress=done.append)) == at_once
        assert done == [1, 2, 3, 4]
        out = io.BytesIO()
        FORMATS["csv"](s, plan, out, None)  # the writer as background jobs and the CLI call it
        assert zipfile.ZipFile(out).namelist()[0] == "export_visit.csv"


def test_a_spec_reads_back_from_its_parameters():
    spec = parse_spec({"since": "2026-03-01", "until": "2026-03-31T12:00:00Z", "site": "KZ-1", "headers": "labels",
                       "language": "en", "split_multiple": "yes", "include_edits": "1", "min_version": "2"},
                      xml_form_id="export_visit", format="xlsx")
    assert parse_spec(spec.as_params()) == spec
    assert spec.filters.until.isoformat() == "2026-03-31T12:00:00+00:00"
    assert parse_spec({"until": "2026-03-31"}, xml_form_id="f").filters.until.isoformat().startswith("2026-03-31T23:59:59")
    assert ExportSpec("f") == ExportSpec("f", "csv", Filters(), Options())
    for params in ({"format": "pdf"}, {"split_multiple": "maybe"}, {"since": "2026-04-01", "until": "2026-03-01"}):
        with pytest.raises(Exception, match="export|is after|not") as failure:
            parse_spec(params, xml_form_id="f")
        assert failure.value.status_code == 422


def test_columns_are_the_union_of_the_versions_in_form_order():
    v1 = [{"path": "/f/a"}, {"path": "/f/old"}, {"path": "/f/b"}]
    v2 = [{"path": "/f/a"}, {"path": "/f/b"}, {"path": "/f/new"}]
    assert [f["path"] for f in merge_fields([v2, v1])] == ["/f/a", "/f/old", "/f/b", "/f/new"]


def test_sheet_names_fit_excel_and_stay_unique():
    long = "a_very_long_repeat_group_name_of_a_form"
    tables = [Table(name=n, path=None, parent=None, columns=()) for n in (long, long + "_2", long.upper(), "x[1]:y/z")]
    names = sheet_names(SimpleNamespace(tables=tables))
    assert names == [long[:31], long[:29] + "~2", long.upper()[:29] + "~3", "x_1__y_z"]  # Excel ignores case
