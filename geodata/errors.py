"""The refusals of the geodata capability, each with its stable code (``app.main`` renders them).

Raise sites pass only the message (and ``details`` where the client needs them): the class fixes
the status and the code, so a code is written once, here.
"""

from __future__ import annotations

from app.errors import Invalid, NotFound, PayloadTooLarge

# -- sites ------------------------------------------------------------------------------------


class SiteNotFound(NotFound):
    code = "sites.not_found"


class FilterForbidden(Invalid):
    """Filters by stage or visit date reveal visit data the caller's role does not see."""

    code = "sites.filter_forbidden"


class BadBbox(Invalid):
    code = "sites.bad_bbox"


class BadExportFormat(Invalid):
    code = "sites.bad_format"


class BadAssuranceType(Invalid):
    code = "sites.bad_assurance_type"


class AssuranceWithoutExpiry(Invalid):
    code = "sites.assurance_without_expiry"


# -- site files (import) ----------------------------------------------------------------------


class SiteFileTooLarge(PayloadTooLarge):
    code = "sites.too_large"


class EmptySiteFile(Invalid):
    """The upload is empty, or the file holds no features/sites."""

    code = "sites.empty_file"


class NoUsableRows(Invalid):
    """Every row of the file has a problem (``details.problems`` lists the first 100)."""

    code = "sites.no_usable_rows"


class NotGeodata(Invalid):
    code = "sites.not_geodata"


class UnreadableFile(Invalid):
    code = "sites.unreadable"


class BadZip(Invalid):
    code = "sites.bad_zip"


class ZipWithoutShp(Invalid):
    code = "sites.zip_without_shp"


class SeveralLayers(Invalid):
    code = "sites.several_layers"


class IncompleteShapefile(Invalid):
    code = "sites.incomplete_shapefile"


class MissingCrs(Invalid):
    code = "sites.missing_crs"


class BadCrs(Invalid):
    code = "sites.bad_crs"


class BadCsv(Invalid):
    code = "sites.bad_csv"


class CsvWithoutGeometry(Invalid):
    code = "sites.csv_without_geometry"


class NoGeometry(Invalid):
    code = "sites.no_geometry"


class BadKind(Invalid):
    code = "sites.bad_kind"


class BadMapping(Invalid):
    code = "sites.bad_mapping"


class NoCodeColumn(Invalid):
    code = "sites.no_code_column"


class BadImportTarget(Invalid):
    """``--as`` names neither sites, legal areas nor auto."""

    code = "sites.bad_target"


class BadLayer(Invalid):
    code = "sites.bad_layer"


# -- legal areas, retiring ---------------------------------------------------------------------


class LegalAreaNotFound(NotFound):
    code = "legal_areas.not_found"


class AmbiguousLegalArea(Invalid):
    """A code found in several layers: the caller must name the layer."""

    code = "legal_areas.ambiguous"
