"""Point registers with one row per visit (issue 14, item 5): the latest row of each code is the site,
the older ones are superseded (and, with ``history``, returned as observations). Pure: no database."""

from datetime import date

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from openpyxl import Workbook

from app.errors import Invalid
from geodata import importers

KOLWEZI = (25.473, -10.716)


def register(rows: list[tuple[str, object]], *, date_column: str = "date_visite", width: int = 30) -> pd.DataFrame:
    """A wide register: code, a visit date, lon/lat and ``width`` answer columns (q00 says which row it is)."""
    frame = pd.DataFrame({"code": [code for code, _ in rows], date_column: [when for _, when in rows],
                          "lon": [KOLWEZI[0] + i * 0.01 for i in range(len(rows))], "lat": KOLWEZI[1]})
    for j in range(width):
        frame[f"q{j:02d}"] = [f"row {i + 1}" if j == 0 else ("" if (i + j) % 3 == 0 else f"answer {j}")
                              for i in range(len(rows))]
    return frame


def test_a_wide_register_keeps_the_latest_visit_of_each_site(tmp_path):
    rows = [("S-1", "03/05/2023"), ("S-2", "2021-01-10"), ("S-1", "15/01/2024"), ("S-1", "not noted"),
            ("S-3", "01/02/2022"), ("S-2", "2022-06-30T09:15:00"), ("S-1", "14/01/2024")]
    path = tmp_path / "registre.csv"
    register(rows).to_csv(path, index=False, sep=";", encoding="cp1252")

    read = importers.read_sites(path)

    assert list(read.frame["code"]) == ["S-1", "S-3", "S-2"]  # each site at its kept row (3, 5, 6), in file order
    kept = dict(zip(read.frame["code"], read.frame["properties"], strict=True))
    assert (kept["S-1"]["q00"], kept["S-1"]["date_visite"]) == ("row 3", "15/01/2024")
    assert kept["S-2"]["q00"] == "row 6" and kept["S-3"]["q00"] == "row 5"
    centre = read.frame.geometry.iloc[0].centroid  # the site is where the kept visit was
    assert centre.x == pytest.approx(KOLWEZI[0] + 0.02, abs=1e-4)
    assert (read.rows_read, read.superseded, read.latest_by, read.problems) == (7, 4, "date_visite", [])
    assert read.observations is None
    assert read.warnings[0] == {"row": 0, "code": None, "warning":
                                "7 rows → 3 sites: 4 older rows of repeated site codes superseded by the latest row "
                                "by date_visite (dropped: import with history to keep them as observations); "
                                "1 rows without a readable date_visite ranked oldest"}


def test_history_returns_the_older_rows_as_observations(tmp_path):
    rows = [("S-1", "03/05/2023"), ("S-1", "15/01/2024"), ("S-1", ""), ("S-2", "2024-02-01"), ("S-1", "15/01/2024")]
    path = tmp_path / "registre.csv"
    register(rows, date_column="vdate", width=4).to_csv(path, index=False)

    read = importers.read_sites(path, history=True)

    assert read.frame.set_index("code").loc["S-1", "properties"]["q00"] == "row 5"  # equal dates: the last row
    obs = read.observations
    assert list(obs.columns) == ["code", "observed_on", "row", "properties"]
    assert list(obs["code"]) == ["S-1", "S-1", "S-1"] and list(obs["row"]) == [1, 2, 3]
    assert list(obs["observed_on"]) == [date(2023, 5, 3), date(2024, 1, 15), None]
    first = obs["properties"].iloc[0]
    assert first["q00"] == "row 1" and first["vdate"] == "03/05/2023" and "code" not in first
    assert (first["lon"], first["lat"]) == (KOLWEZI[0], KOLWEZI[1])
    assert "kept as history" in read.warnings[0]["warning"]


def test_an_xlsx_register_with_excel_serial_dates_and_a_named_date_column(tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["site_id", "Passage", "longitude", "latitude", "état"])
    for row in [("K-9", 45000, 25.47, -10.72, "actif"), ("K-9", 45300.5, 25.48, -10.72, "fermé"),
                ("K-9", 44000, 25.49, -10.72, "ancien")]:
        sheet.append(row)
    path = tmp_path / "registre.xlsx"
    book.save(path)

    with pytest.raises(Invalid) as exc:
        importers.read_sites(path, latest_by="date")
    assert exc.value.code == "sites.bad_mapping" and "'date'" in exc.value.message

    read = importers.read_sites(path, latest_by="passage", history=True)
    assert read.frame["properties"].iloc[0]["état"] == "fermé"
    assert sorted(read.observations["observed_on"]) == [date(2020, 6, 18), date(2023, 3, 15)]


def test_polygons_sharing_a_code_stay_parts_unless_latest_by_is_given(tmp_path):
    old, new = shapely.box(25.46, -10.73, 25.47, -10.72), shapely.box(25.50, -10.73, 25.52, -10.71)
    path = tmp_path / "titres.geojson"
    gpd.GeoDataFrame({"code": ["PE-1", "PE-1"], "date": ["2019-01-01", "2024-01-01"]},
                     geometry=[old, new], crs=4326).to_file(path)

    merged = importers.read_sites(path)
    assert (merged.merged, merged.superseded) == (1, 0)
    assert merged.frame.geometry.iloc[0].geom_type == "MultiPolygon"

    latest = importers.read_sites(path, latest_by="date")
    assert (latest.merged, latest.superseded) == (0, 1)
    assert latest.frame.geometry.iloc[0].equals(new)


def test_dates_as_registers_write_them():
    text = pd.Series(["2024-05-03", "03/05/2024", "3.5.2024", "45415", "45415.75", "2024-05-03 08:30:00",
                      "31/02/2024", "yesterday", "", None])
    parsed = importers.parse_dates(text)
    day = pd.Timestamp("2024-05-03")
    assert list(parsed[:4]) == [day] * 4
    assert parsed[4] == day + pd.Timedelta(hours=18) and parsed[5] == day + pd.Timedelta(hours=8, minutes=30)
    assert parsed[6:].isna().all()
    assert list(importers.parse_dates(pd.Series([45415, None], dtype="Int64"))[:1]) == [day]
    assert importers.parse_dates(pd.Series(pd.to_datetime(["2024-05-03"]))).iloc[0] == day


def test_two_date_columns_are_not_guessed_between(tmp_path):
    path = tmp_path / "registre.csv"
    frame = register([("S-1", "2023-01-01"), ("S-1", "2024-01-01")], date_column="date", width=1)
    frame["visit_date"] = ["2024-06-01", "2023-06-01"]
    frame.to_csv(path, index=False)
    read = importers.read_sites(path)
    assert read.superseded == 0 and read.problems[0]["problem"] == "duplicate code (first on row 1)"
    assert read.warnings[0]["warning"].startswith("several date columns (date, visit_date)")
    assert importers.read_sites(path, latest_by="visit_date").frame["properties"].iloc[0]["q00"] == "row 1"
