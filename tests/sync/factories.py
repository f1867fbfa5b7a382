"""Builders only the sync tests use: forms from inline markdown XLSForms (through the forms
service), instance XML from data dicts, photos made with Pillow, multipart bodies."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from sqlmodel import Session

from app.blobs import FilesystemBlobStore
from app.identity import Actor
from app.settings import Settings
from forms import service as forms_service
from forms.models import Form, FormVersion
from sync.submission_xml import build_instance_xml
from tests.factories import new_instance_id

#: A small site-visit-like form: typed fields, a group, a repeat with geopoints, a photo.
TYPED_VISIT_MD = """
| survey   |                      |             |                 |
|          | type                 | name        | label           |
|          | date                 | visit_date  | Date            |
|          | dateTime             | seen_at     | Seen at         |
|          | integer              | workers     | Workers         |
|          | decimal              | depth_m     | Depth           |
|          | geopoint             | location    | Location        |
|          | select_one activity  | activity    | Activity        |
|          | select_multiple docs | docs        | Documents       |
|          | begin_group          | g           | Group           |
|          | text                 | note        | Note            |
|          | end_group            |             |                 |
|          | image                | photo       | Photo           |
|          | image                | photo2      | Photo 2         |
|          | begin_repeat         | pits        | Pits            |
|          | geopoint             | pit_gps     | Pit GPS         |
|          | integer              | pit_depth   | Pit depth       |
|          | end_repeat           |             |                 |
| choices  |                      |             |                 |
|          | list_name            | name        | label           |
|          | activity             | active      | Active          |
|          | activity             | suspended   | Suspended       |
|          | docs                 | coop_approval | Coop approval |
|          | docs                 | none        | None            |
| settings |                      |             |                 |
|          | form_id              | version     | form_title      |
|          | {form_id}            | {version}   | Visit           |
"""

#: A case form (kind case_intake): photos are stored with all metadata stripped. It answers what
#: cases needs to open a case (age, consent), so the photo is kept.
PHOTO_CASE_MD = """
| survey   |                  |                     |           |
|          | type             | name                | label     |
|          | text             | child_code          | Code      |
|          | integer          | age_estimated_years | Age       |
|          | select_one yn    | consent_services    | Consent   |
|          | image            | photo               | Photo     |
| choices  |                  |                     |           |
|          | list_name        | name                | label     |
|          | yn               | yes                 | Yes       |
|          | yn               | no                  | No        |
| settings |                  |                     |           |
|          | form_id          | version             |           |
|          | {form_id}        | {version}           |           |
"""


def photo_case_data(**overrides: Any) -> dict[str, Any]:
    """Answers of a valid intake on ``PHOTO_CASE_MD`` (a 12-year-old, consent given)."""
    data = {"/data/child_code": "C-1", "/data/age_estimated_years": 12, "/data/consent_services": "yes"}
    data.update(overrides)
    return data


def blobs_for(settings: Settings) -> FilesystemBlobStore:
    return FilesystemBlobStore(settings.media_path)


def make_form(session: Session, settings: Settings, *, md: str = TYPED_VISIT_MD, form_id: str = "visit",
              version: str = "1", kind: str = "site_visit") -> tuple[Form, FormVersion]:
    """Publish an inline markdown XLSForm through the forms service."""
    result = forms_service.add_form(session, blobs=blobs_for(settings), settings=settings, actor=None,
                                    content=md.format(form_id=form_id, version=version).encode(),
                                    filename=f"{form_id}.md", kind=kind)
    return result.form, result.version


def actor(person: Any) -> Actor:
    """The service-level actor for a ``world`` person."""
    return Actor(user=person.user, via="basic")


def typed_visit_data(root: str = "/data", **overrides: Any) -> dict[str, Any]:
    data = {
        f"{root}/visit_date": "2026-03-01",
        f"{root}/workers": 12,
        f"{root}/depth_m": 4.5,
        f"{root}/location": "-10.7 25.5 1200 5",
        f"{root}/activity": "active",
        f"{root}/docs": ["coop_approval"],
        f"{root}/g/note": "ok",
        f"{root}/pits": [{f"{root}/pits/pit_gps": "-10.71 25.51 0 3", f"{root}/pits/pit_depth": 3},
                         {f"{root}/pits/pit_gps": "-10.72 25.52 0 4"}],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def xml_for(version: FormVersion, data: dict[str, Any], instance_id: str | None = None,
            deprecated_id: str | None = None) -> bytes:
    return build_instance_xml(version, data, instance_id or new_instance_id(), deprecated_id)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions (a decompression bomb) without the pixels: cheap to make."""
    import struct
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


# -- images full of metadata (issue 9, finding 2) -------------------------------------------

#: Strings hidden in the metadata of ``jpeg_with_metadata`` / ``png_with_metadata``: none may be stored.
SECRETS = (b"FieldCam", b"SecretModel-9", b"child lives by pit 7", b"xmp-secret-name", b"iptc-secret-name",
           b"png-text-secret", b"png-ztxt-secret", b"png-itxt-secret", b"icc-secret-desc")
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:title="xmp-secret-name"/></rdf:RDF>'
       b'</x:xmpmeta>')
#: The first bytes of an iPhone HEIC photo (an ISO-BMFF ``ftyp`` box with brand ``heic``).
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00\x00\x01\x00meta" + b"\x00" * 300


def _icc_profile() -> bytes:
    """A (fake but well-framed) ICC profile carrying a description string."""
    return b"\x00\x00\x01\x00" + b"icc-secret-desc" + b"\x00" * 240


def jpeg_with_metadata(size: tuple[int, int] = (80, 60), color: str = "teal") -> bytes:
    """A JPEG with EXIF (GPS, camera make and model), a COM comment, XMP, an ICC profile and an
    IPTC (APP13) block: everything a phone or an editing app may leave in a photo."""
    image = Image.new("RGB", size, color)
    exif = Image.Exif()
    exif[0x010F] = "FieldCam"  # Make
    exif[0x0110] = "SecretModel-9"  # Model
    exif[0x8825] = {1: "S", 2: (10.0, 42.0, 7.5), 3: "E", 4: (25.0, 30.0, 1.25)}  # GPSInfo
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes(), comment=b"child lives by pit 7", xmp=XMP,
               icc_profile=_icc_profile())
    data = buffer.getvalue()
    iptc = b"Photoshop 3.0\x00" + b"8BIM\x04\x04\x00\x00" + b"\x00\x00\x00\x16" + b"\x1c\x02\x05\x00\x10iptc-secret-name" + b"\x00"
    app13 = b"\xff\xed" + (len(iptc) + 2).to_bytes(2, "big") + iptc
    return data[:2] + app13 + data[2:]


def png_with_metadata(size: tuple[int, int] = (40, 30)) -> bytes:
    """A PNG with tEXt, zTXt and iTXt chunks, an eXIf chunk and an iCCP profile."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "png-text-secret")
    info.add_text("Author", "png-ztxt-secret", zip=True)
    info.add_itxt("Description", "png-itxt-secret", lang="fr", tkey="Description")
    exif = Image.Exif()
    exif[0x010F] = "FieldCam"
    buffer = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 30, 255)).save(buffer, format="PNG", pnginfo=info, exif=exif.tobytes(),
                                                     icc_profile=_icc_profile())
    return buffer.getvalue()


def assert_no_metadata(data: bytes) -> None:
    """The stored bytes are an image with nothing but pixels: no EXIF, XMP, ICC, comment or text."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        assert dict(image.getexif()) == {}
        kept = set(image.info) & {"exif", "xmp", "XML:com.adobe.xmp", "comment", "icc_profile", "Comment", "Author",
                                  "Description", "photoshop", "adobe"}
        assert not kept, kept
        assert not getattr(image, "text", {}), image.text
    for secret in SECRETS:
        assert secret not in data, secret
    assert b"Exif\x00\x00" not in data and b"8BIM" not in data and b"http://ns.adobe.com/xap" not in data


def multipart_typed(xml: bytes, files: list[tuple[str, bytes, str | None]]) -> tuple[bytes, dict[str, str]]:
    """A Collect-like multipart body whose file parts carry the given names and declared types."""
    boundary = "typedBoundary42"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; filename="s.xml"\r\n'
             f'Content-Type: text/xml\r\n\r\n'.encode() + xml + b"\r\n"]
    for name, content, declared in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
        if declared:
            head += f"Content-Type: {declared}\r\n"
        parts.append((head + "\r\n").encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={boundary}", "X-OpenRosa-Version": "1.0"}
