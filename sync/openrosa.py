"""OpenRosa wire formats: headers, formList, manifest and OpenRosaResponse bodies.

Pure (no FastAPI, no database), like ODK Central's ``lib/formats/openrosa.js``. Documents are
built with lxml so every value is escaped.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import formatdate

from lxml import etree

OPENROSA_VERSION = "1.0"
XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"
XML_MEDIA_TYPE = "text/xml; charset=utf-8"


def headers(max_submission_bytes: int) -> dict[str, str]:
    """The headers every OpenRosa response carries (errors included)."""
    return {
        "X-OpenRosa-Version": OPENROSA_VERSION,
        "X-OpenRosa-Accept-Content-Length": str(max_submission_bytes),
        "Date": formatdate(usegmt=True),
        "Content-Language": "en",
    }


@dataclass
class FormListEntry:
    form_id: str
    name: str
    version: str
    md5: str
    download_url: str
    manifest_url: str | None = None


@dataclass
class ManifestFile:
    filename: str
    md5: str
    download_url: str


def _document(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def form_list(entries: list[FormListEntry]) -> bytes:
    """The ``<xforms>`` form discovery document; ``manifestUrl`` only for forms that use media."""
    root = etree.Element(f"{{{XFORMS_LIST_NS}}}xforms", nsmap={None: XFORMS_LIST_NS})
    for entry in entries:
        xform = etree.SubElement(root, f"{{{XFORMS_LIST_NS}}}xform")
        for tag, value in (("formID", entry.form_id), ("name", entry.name), ("version", entry.version),
                           ("hash", f"md5:{entry.md5}"), ("downloadUrl", entry.download_url)):
            etree.SubElement(xform, f"{{{XFORMS_LIST_NS}}}{tag}").text = value
        if entry.manifest_url:
            etree.SubElement(xform, f"{{{XFORMS_LIST_NS}}}manifestUrl").text = entry.manifest_url
    return _document(root)


def manifest(files: list[ManifestFile]) -> bytes:
    """The ``<manifest>`` of a form version's media files with their md5 hashes."""
    root = etree.Element(f"{{{MANIFEST_NS}}}manifest", nsmap={None: MANIFEST_NS})
    for file in files:
        media_file = etree.SubElement(root, f"{{{MANIFEST_NS}}}mediaFile")
        etree.SubElement(media_file, f"{{{MANIFEST_NS}}}filename").text = file.filename
        etree.SubElement(media_file, f"{{{MANIFEST_NS}}}hash").text = f"md5:{file.md5}"
        etree.SubElement(media_file, f"{{{MANIFEST_NS}}}downloadUrl").text = file.download_url
    return _document(root)


def response(message: str, *, nature: str = "") -> bytes:
    """An ``<OpenRosaResponse>`` whose ``<message>`` ODK Collect shows to the user."""
    root = etree.Element(f"{{{RESPONSE_NS}}}OpenRosaResponse", nsmap={None: RESPONSE_NS})
    root.set("items", "0")
    node = etree.SubElement(root, f"{{{RESPONSE_NS}}}message")
    node.set("nature", nature)
    node.text = message
    return _document(root)
