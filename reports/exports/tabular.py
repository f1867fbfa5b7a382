"""Tabular exports: the CSV zip (main table + one CSV per repeat group, as ODK Central), the XLSX
workbook (one sheet per table) and the single main-table CSV of the stable URL.

Each reads the rows once (``rows.iter_records``) and writes as it reads: the zip's main CSV goes
straight into the zip entry; repeat rows are spooled to temporary files and copied in after, so
memory stays flat. CSVs are UTF-8 with a BOM, so Excel shows accents right, and still read by
pandas (``encoding="utf-8-sig"``) and R (``fileEncoding="UTF-8-BOM"``).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import IO, Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlmodel import Session

from reports.errors import ExportTooLarge
from reports.exports import rows as rows_
from reports.exports.rows import ExportPlan, Table

Progress = Callable[[int], None]
#: Rows of an XLSX sheet, header included.
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL = 32_767
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def _cell(value: Any) -> Any:
    """A CSV cell: ISO date-times, true/false, empty for none."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _fixes(table: Table) -> list[int]:
    """The columns whose cells ``csv`` would not write as we want (date-times, booleans); None is
    written empty by ``csv`` itself."""
    return [i for i, c in enumerate(table.columns) if c.meta == "_submitted_at" or c.type == "boolean"]


def csv_name(plan: ExportPlan, table: Table) -> str:
    """``<form>.csv`` for the main table, ``<form>-<repeat>.csv`` for a repeat group's (as ODK Central)."""
    return f"{plan.xml_form_id}.csv" if table.path is None else f"{plan.xml_form_id}-{table.name}.csv"


def _text_writer(raw: IO[bytes]) -> tuple[io.TextIOWrapper, Any]:
    """A CSV writer over ``raw``, the BOM written first (the utf-8-sig codec would cost a Python call per row)."""
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="", write_through=False)
    text.write("\ufeff")
    return text, csv.writer(text, lineterminator="\r\n")


def write_csv_zip(session: Session, plan: ExportPlan, out: BinaryIO, progress: Progress | None = None) -> None:
    """The CSV zip into ``out`` (may be unseekable: zipfile then writes data descriptors)."""
    spools: dict[int, tuple[IO[bytes], io.TextIOWrapper, Any]] = {}
    try:
        for table in plan.tables[1:]:
            raw = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finally)
            text, writer = _text_writer(raw)
            writer.writerow(table.header)
            spools[id(table)] = (raw, text, writer)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            with archive.open(csv_name(plan, plan.main), "w", force_zip64=True) as entry:
                text, main = _text_writer(entry)
                main.writerow(plan.main.header)
                out.flush()  # the zip's first bytes leave now, before any row is read
                fixes = {id(t): _fixes(t) for t in plan.tables}
                for table, values in rows_.iter_records(session, plan, progress=progress):
                    for i in fixes[id(table)]:
                        values[i] = _cell(values[i])
                    if table is plan.main:
                        main.writerow(values)
                    else:
                        spools[id(table)][2].writerow(values)
                text.flush()
                text.detach()
            for table in plan.tables[1:]:
                raw, text, _ = spools[id(table)]
                text.flush()
                raw.seek(0)
                with archive.open(csv_name(plan, table), "w", force_zip64=True) as entry:
                    shutil.copyfileobj(raw, entry, 1 << 20)
    finally:
        for raw, _, _ in spools.values():
            raw.close()


def sheet_names(plan: ExportPlan) -> list[str]:
    """One sheet name per table: at most 31 characters, none of ``[]:*?/\\``, unique (case-insensitively)."""
    names: list[str] = []
    taken: set[str] = set()
    for table in plan.tables:
        base = _SHEET_BAD.sub("_", table.name).strip("'") or "sheet"
        name, n = base[:31], 1
        while name.lower() in taken:
            n += 1
            suffix = f"~{n}"
            name = base[:31 - len(suffix)] + suffix
        taken.add(name.lower())
        names.append(name)
    return names


def _xlsx_text(sheet: Any, value: str) -> Any:
    """A text cell for a string openpyxl would take for a formula (``=…``) or refuse (control
    characters), or one past Excel's cell limit."""
    cell = WriteOnlyCell(sheet, value=_ILLEGAL_XML.sub("", value)[:XLSX_MAX_CELL])
    cell.data_type = "s"
    return cell


def _xlsx_row(sheet: Any, values: list[Any], dates: list[int], times: list[int]) -> list[Any]:
    """Typed cells: numbers stay numbers, ``date`` answers become dates, text stays text."""
    for i in times:
        if values[i] is not None:
            values[i] = values[i].replace(tzinfo=None)  # Excel has no time zones; the value is UTC
    for i in dates:
        if isinstance(values[i], str):
            try:
                values[i] = date.fromisoformat(values[i])
            except ValueError:
                pass
    for i, value in enumerate(values):
        if value.__class__ is str and (value[:1] == "=" or len(value) > XLSX_MAX_CELL or _ILLEGAL_XML.search(value)):
            values[i] = _xlsx_text(sheet, value)
    return values


def check_xlsx(session: Session, plan: ExportPlan) -> None:
    """Refuse (422 ``export.too_large``) an export whose main sheet would pass Excel's row limit."""
    total = rows_.count(session, plan)
    if total + 1 > XLSX_MAX_ROWS:
        raise ExportTooLarge(f"{total} rows do not fit an Excel sheet ({XLSX_MAX_ROWS - 1} at most); "
                             "export as CSV or narrow the filters")


def write_xlsx(session: Session, plan: ExportPlan, out: BinaryIO, progress: Progress | None = None) -> None:
    """The XLSX workbook into ``out``: one sheet per table (openpyxl write-only mode: rows go to
    temporary files as they come).

    :raises ExportTooLarge: when a sheet would pass Excel's 1,048,576 rows (checked before writing
        for the main sheet; use the CSV zip).
    """
    check_xlsx(session, plan)
    book = Workbook(write_only=True)
    sheets = {}
    for table, name in zip(plan.tables, sheet_names(plan), strict=True):
        sheet = book.create_sheet(title=name)
        sheet.append([_xlsx_text(sheet, h) for h in table.header])
        dates = [i for i, c in enumerate(table.columns) if c.type == "date" and not c.meta]
        times = [i for i, c in enumerate(table.columns) if c.meta == "_submitted_at"]
        sheets[id(table)] = [sheet, 1, dates, times]
    for table, values in rows_.iter_records(session, plan, progress=progress):
        entry = sheets[id(table)]
        entry[1] += 1
        if entry[1] > XLSX_MAX_ROWS:
            raise ExportTooLarge(f"sheet {table.name!r} has more than {XLSX_MAX_ROWS - 1} rows; export as CSV")
        entry[0].append(_xlsx_row(entry[0], values, entry[2], entry[3]))
    book.save(out)


def stream_csv(session: Session, plan: ExportPlan, *, progress: Progress | None = None,
               flush_bytes: int = 64 * 1024) -> Iterator[bytes]:
    """The main table as one CSV, in pieces: the BOM and header line first (at once), then about
    ``flush_bytes`` at a time."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(plan.main.header)
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    fixes = _fixes(plan.main)
    for values in rows_.iter_rows(session, plan, plan.main, progress=progress):
        for i in fixes:
            values[i] = _cell(values[i])
        writer.writerow(values)
        if buffer.tell() >= flush_bytes:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")
