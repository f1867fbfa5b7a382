"""Exports of a form's submissions (issue 15): what to export (``spec``), who may export what and
the rows (``rows``), and the writers by format (``FORMATS``).

A writer is ``writer(session, plan, out, progress) -> None``: it reads the plan's rows from
``session`` and writes the file into the binary stream ``out`` (possibly unseekable), calling
``progress(rows done)`` as it goes (``progress`` may be None). The geo and media formats register
themselves here from their own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO

from sqlmodel import Session

from reports.exports import geo, tabular
from reports.exports.rows import ExportPlan

Writer = Callable[[Session, ExportPlan, BinaryIO, "Callable[[int], None] | None"], None]


class Format:
    """A format's writer, media type and file extension."""

    def __init__(self, writer: Writer, media_type: str, extension: str) -> None:
        self.writer = writer
        self.media_type = media_type
        self.extension = extension

    def __call__(self, session: Session, plan: ExportPlan, out: BinaryIO, progress: Any = None) -> None:
        self.writer(session, plan, out, progress)


#: Format name → writer (callable as ``FORMATS[name](session, plan, out, progress)``), with
#: ``.media_type`` and ``.extension`` for responses and file names.
FORMATS: dict[str, Format] = {
    "csv": Format(tabular.write_csv_zip, "application/zip", "zip"),
    "xlsx": Format(tabular.write_xlsx, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "geojson": Format(geo.write_geojson, geo.GEOJSON_MEDIA_TYPE, "geojson"),
    "gpkg": Format(geo.write_gpkg, geo.GPKG_MEDIA_TYPE, "gpkg"),
}
