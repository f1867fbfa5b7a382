"""Issue 14 item 7: site registers as spreadsheets save them — French Excel's CSV (``;``, decimal commas,
Windows-1252, CRLF), Excel's "CSV UTF-8" (BOM), plain UTF-8, and XLSX workbooks read directly."""

import shapely
from openpyxl import Workbook

from geodata import importers, spatial
from tests.geodata.conftest import import_frame

HEADER = ["code", "nom", "longitude", "latitude", "radius_m", "profondeur_m", "minerais"]
ROWS = [
    ["KOL-001", "Kolwézi – puits n°1 (Œuvre)", "25,473", "-10,716", "50,5", "12,5", "Cu,Co"],
    ["KOL-002", "Mutoshi carrière", "25,6", "-10,65", "80", "1 250,75", "Co"],
]


def french_excel_csv(rows=ROWS, *, bom: bool = False, encoding: str = "cp1252") -> bytes:
    """What Excel writes on a French Windows: ``;`` separator, decimal commas, CRLF; "CSV (séparateur:
    point-virgule)" is Windows-1252, "CSV UTF-8" is the same with UTF-8 and a BOM. Cells holding the
    separator or a quote are quoted."""
    def cell(value: str) -> str:
        return f'"{value.replace(chr(34), chr(34) * 2)}"' if any(c in value for c in ';"\n') else value
    text = "\r\n".join(";".join(cell(v) for v in row) for row in [HEADER, *rows]) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode(encoding)


def english_csv(*, bom: bool) -> bytes:
    rows = [[v.replace(",", ".").replace(" ", "") if i in (2, 3, 4, 5) else v for i, v in enumerate(r)] for r in ROWS]
    lines = [",".join(f'"{v}"' if "," in v else v for v in row) for row in [HEADER, *rows]]
    return (b"\xef\xbb\xbf" if bom else b"") + ("\r\n".join(lines) + "\r\n").encode("utf-8")


def assert_register(read):
    assert read.problems == [] and list(read.frame["code"]) == ["KOL-001", "KOL-002"]
    assert list(read.frame["name"]) == ["Kolwézi – puits n°1 (Œuvre)", "Mutoshi carrière"]
    first = read.frame.geometry.iloc[0]
    centre = shapely.centroid(first)
    assert abs(centre.x - 25.473) < 1e-4 and abs(centre.y - -10.716) < 1e-4
    # radius 50.5 m: the circle's area is about π r²
    assert abs(spatial.area_m2([first])[0] / (3.14159 * 50.5**2) - 1) < 0.02
    props = read.frame["properties"].iloc[1]
    assert props["profondeur_m"] == "1250.75"


def test_french_excel_csv_semicolons_decimal_commas_windows_1252(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_bytes(french_excel_csv())
    assert b"\xe9" in path.read_bytes() and b"\x96" in path.read_bytes()  # é and – in Windows-1252
    read = importers.read_sites(path)
    assert read.format == "csv"
    assert_register(read)
    assert read.frame["minerals"].iloc[0] == ["cu", "co"]  # a list, not a decimal number


def test_french_excel_csv_utf8_with_bom(tmp_path):
    path = tmp_path / "sites.csv"
    path.write_bytes(french_excel_csv(bom=True, encoding="utf-8"))
    assert_register(importers.read_sites(path))


def test_utf8_csv_with_and_without_bom_and_commas(tmp_path):
    for bom in (True, False):
        path = tmp_path / f"sites-{bom}.csv"
        path.write_bytes(english_csv(bom=bom))
        read = importers.read_sites(path)
        assert_register(read)
        assert "\ufeffcode" not in read.frame.columns


def test_separator_and_decimal_mark_are_sniffed():
    assert importers.sniff_separator("a;b;c\r\n1,5;2;x\r\n") == ";"
    assert importers.sniff_separator('a,b,c\n"1;5",2,x\n') == ","
    assert importers.sniff_separator("a\tb\n1,5\t2\n") == "\t"
    assert importers.decode_text("Kolwézi".encode("cp1252")) == "Kolwézi"
    assert importers.decode_text(b"\xef\xbb\xbfKolw\xc3\xa9zi") == "Kolwézi"


def excel_workbook(path, *, notes_first: bool = True):
    """An .xlsx as Excel saves it: numbers as numeric cells, a notes sheet before the data."""
    book = Workbook()
    sheet = book.active
    if notes_first:
        sheet.title = "Notes"
        sheet.append(["Registre des sites miniers artisanaux, 2026"])
        sheet = book.create_sheet("Sites")
    else:
        sheet.title = "Sites"
    sheet.append(HEADER)
    sheet.append(["KOL-001", "Kolwézi – puits n°1 (Œuvre)", 25.473, -10.716, 50.5, 12.5, "Cu,Co"])
    sheet.append(["KOL-002", "Mutoshi carrière", 25.6, -10.65, 80, 1250.75, "Co"])
    book.save(path)


def test_xlsx_sheets_import_directly(engine, settings, world, tmp_path):
    path = tmp_path / "registre.xlsx"
    excel_workbook(path)
    read = importers.read_sites(path)
    assert read.format == "xlsx"
    assert_register(read)
    report = import_frame(engine, settings, read.frame)
    assert report["created"] == 2


def test_xlsx_and_french_csv_through_the_api(client, world, tmp_path):
    path = tmp_path / "registre.xlsx"
    excel_workbook(path, notes_first=False)
    r = client.post("/api/v1/sites/import", headers=world.coordinator.bearer,
                    files={"file": ("registre.xlsx", path.read_bytes())})
    assert r.status_code == 200, r.text
    assert (r.json()["format"], r.json()["created"]) == ("xlsx", 2)
    r = client.post("/api/v1/sites/import", headers=world.coordinator.bearer,
                    files={"file": ("registre.csv", french_excel_csv())})
    assert r.status_code == 200, r.text
    assert (r.json()["format"], r.json()["unchanged"]) == ("csv", 2)  # the same register, the same sites
    names = {f["id"]: f["properties"]["name"] for f in
             client.get("/api/v1/sites", headers=world.coordinator.bearer).json()["features"]}
    assert names == {"KOL-001": "Kolwézi – puits n°1 (Œuvre)", "KOL-002": "Mutoshi carrière"}
