"""XLSForm in, XForm out: a thin, safe wrapper around ``pyxform.convert``.

Pure: no FastAPI, no database. Accepts .xlsx/.xlsm workbooks and pyxform's markdown-table
format (what our tests and bundled forms are written in). pyxform's warnings are returned; its
errors become :class:`XLSFormError` carrying pyxform's message and, when it names one, the row.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field

#: A workbook may not inflate beyond this (zip bombs); real XLSForms are far below a megabyte.
MAX_UNZIPPED_BYTES = 200_000_000
ROW = re.compile(r"\[row\s*:\s*(\d+)\]")


class XLSFormError(ValueError):
    """pyxform refused the XLSForm. ``row`` is the spreadsheet row it points to, if any."""

    def __init__(self, message: str, *, row: int | None = None, sheet: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.row = row
        self.sheet = sheet


@dataclass
class Conversion:
    xform: str
    warnings: list[str] = field(default_factory=list)


def file_type(filename: str | None, data: bytes) -> str:
    """``xlsx``, ``md`` or ``xml`` from the name, else from the first bytes; ``unknown`` otherwise."""
    name = (filename or "").lower()
    if name.endswith((".xlsx", ".xlsm")):
        return "xlsx"
    if name.endswith(".md"):
        return "md"
    if name.endswith(".xml"):
        return "xml"
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"<"):
        return "xml"
    if head.startswith(b"|"):
        return "md"
    return "unknown"


def _check_workbook(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
            if "[Content_Types].xml" not in archive.namelist():
                raise XLSFormError("not an .xlsx workbook: the zip has no [Content_Types].xml")
    except zipfile.BadZipFile as exc:
        raise XLSFormError(f"not an .xlsx workbook: corrupt or truncated zip ({exc})") from exc
    if total > MAX_UNZIPPED_BYTES:
        raise XLSFormError(f"the workbook inflates to {total} bytes, more than {MAX_UNZIPPED_BYTES}")


def convert(data: bytes | str, *, kind: str = "xlsx") -> Conversion:
    """Convert an XLSForm to an XForm.

    :param data: the workbook bytes (``kind="xlsx"``) or markdown-table text (``kind="md"``).
    :param kind: ``xlsx`` or ``md``.
    :returns: the XForm XML and pyxform's warnings.
    :raises XLSFormError: with pyxform's message and the row it names.
    """
    from pyxform.errors import PyXFormError
    from pyxform.xls2xform import convert as pyxform_convert

    if kind == "xlsx":
        if isinstance(data, str):
            raise XLSFormError("an .xlsx workbook must be given as bytes")
        _check_workbook(data)
        source: bytes | str = data
        file_type_arg = ".xlsx"
    elif kind == "md":
        try:
            source = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError as exc:
            raise XLSFormError("a markdown XLSForm must be UTF-8 text") from exc
        file_type_arg = ".md"
    else:
        raise XLSFormError(f"unsupported XLSForm kind {kind!r}")
    warnings: list[str] = []
    try:
        result = pyxform_convert(xlsform=source, warnings=warnings, file_type=file_type_arg)
    except PyXFormError as exc:
        raise _error(str(exc)) from exc
    except (KeyError, ValueError, TypeError, IndexError, AttributeError, zipfile.BadZipFile, OSError) as exc:
        # pyxform and openpyxl raise plain exceptions on some damaged inputs.
        raise XLSFormError(f"the XLSForm could not be read: {type(exc).__name__}: {exc}") from exc
    return Conversion(xform=result.xform, warnings=list(dict.fromkeys(warnings + list(result.warnings or []))))


def _error(message: str) -> XLSFormError:
    match = ROW.search(message)
    sheet = next((s for s in ("survey", "choices", "settings", "entities") if f"'{s}' sheet" in message), None)
    return XLSFormError(message, row=int(match.group(1)) if match else None, sheet=sheet)


def markdown_to_xlsx(text: str) -> bytes:
    """The same XLSForm as an .xlsx workbook (to edit a bundled form in a spreadsheet).

    :raises XLSFormError: when the markdown cannot be read as XLSForm tables.
    """
    from pyxform.xls2json_backends import md_table_to_workbook

    try:
        book = md_table_to_workbook(text)
    except (ValueError, KeyError, IndexError) as exc:
        raise XLSFormError(f"the markdown XLSForm could not be read: {exc}") from exc
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
