"""Builders shared by the test packages and the benchmarks: sample forms, photos, submissions, batch items.

Forms are markdown-table XLSForms (pyxform converts them); photos are drawn with Pillow; no
binary fixtures.
"""

from __future__ import annotations

import hashlib
import io
import random
import uuid
from typing import Any

from PIL import Image, ImageDraw
from sqlmodel import Session

from app.blobs import FilesystemBlobStore
from app.settings import Settings
from sync.submission_xml import build_instance_xml

#: A small site-visit form: typed fields, a geopoint, a photo and a repeat of photos.
VISIT_MD = """
| survey |
| | type | name | label | required |
| | text | site_code | Site code | yes |
| | date | visit_date | Visit date | |
| | integer | workers | Workers seen | |
| | select_one yn | children_seen | Children seen? | |
| | geopoint | location | Location | |
| | image | site_photo | Photo of the site | |
| | begin_repeat | pits | Pits | |
| | image | pit_photo | Pit photo | |
| | decimal | depth_m | Depth (m) | |
| | end_repeat | | | |
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
| settings |
| | form_id | version | name |
| | field_visit | 1 | field_visit |
"""

#: The same form, version 2 (a new question).
VISIT_V2_MD = VISIT_MD.replace("| | field_visit | 1 | field_visit |", "| | field_visit | 2 | field_visit |").replace(
    "| | integer | workers | Workers seen | |", "| | integer | workers | Workers seen | |\n| | text | remarks | Remarks | |")

#: A case form (its submissions are never served by the read API).
CASE_MD = """
| survey |
| | type | name | label |
| | text | child_ref | Reference |
| | integer | age_estimated_years | Age |
| | select_one yn | consent_services | Consent to services |
| | select_one yn | consent_photo | Consent to a photo |
| | image | child_photo | Photo |
| choices |
| | list_name | name | label |
| | yn | yes | Yes |
| | yn | no | No |
| settings |
| | form_id | version | name |
| | case_check | 1 | case_check |
"""

ROOT = "/field_visit"


def case_data(**extra: Any) -> dict[str, Any]:
    """Data for one case_check intake that opens a case (a 12-year-old, consents given)."""
    return {"/case_check/child_ref": "R1", "/case_check/age_estimated_years": 12,
            "/case_check/consent_services": "yes", "/case_check/consent_photo": "yes",
            **{f"/case_check/{k}": v for k, v in extra.items()}}


def add_form(session: Session, *, blobs: FilesystemBlobStore, settings: Settings, md: str = VISIT_MD,
             kind: str = "site_visit"):  # noqa: ANN201
    """Publish a markdown XLSForm through the forms service; returns (form, version)."""
    from forms.service import add_form as forms_add

    result = forms_add(session, blobs=blobs, settings=settings, actor=None, content=md.encode(),
                       filename="form.md", kind=kind)
    return result.form, result.version


def photo(seed: int = 0, *, size: tuple[int, int] = (320, 240), noise: bool = False) -> bytes:
    """A JPEG made with Pillow; ``noise`` makes it big (random pixels compress poorly)."""
    rnd = random.Random(seed)
    if noise:
        raw = rnd.randbytes(size[0] * size[1] * 3)
        image = Image.frombytes("RGB", size, raw)
    else:
        image = Image.new("RGB", size, (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
        draw = ImageDraw.Draw(image)
        for _ in range(8):
            x, y = rnd.randrange(size[0]), rnd.randrange(size[1])
            draw.rectangle([x, y, x + 40, y + 30], fill=(rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def photo_of_bytes(target: int, seed: int = 0) -> bytes:
    """A noise JPEG of roughly ``target`` bytes (within ~15 %)."""
    side = max(16, int((target / 0.85) ** 0.5))
    first = photo(seed, size=(side, side), noise=True)
    side = max(16, int(side * (target / len(first)) ** 0.5))
    return photo(seed, size=(side, side), noise=True)


def sha256(data: bytes) -> str:
    """Hex SHA-256 of ``data`` (how blobs are named)."""
    return hashlib.sha256(data).hexdigest()


def new_instance_id() -> str:
    """A fresh ``uuid:`` instance ID, as Collect makes them."""
    return f"uuid:{uuid.uuid4()}"


def visit_data(*, site_code: str = "SITE-001", lat: float = -2.5, lon: float = 28.8, workers: int = 12,
               photo_name: str | None = None, pit_photos: list[str] | None = None, root: str = ROOT,
               seed: int = 0) -> dict[str, Any]:
    """Data (contract shape: absolute paths) for one field_visit submission."""
    data: dict[str, Any] = {
        f"{root}/site_code": site_code,
        f"{root}/visit_date": "2026-03-01",
        f"{root}/workers": workers,
        f"{root}/children_seen": "no",
        f"{root}/location": f"{lat} {lon} 950.0 5.0",
    }
    if photo_name:
        data[f"{root}/site_photo"] = photo_name
    if pit_photos:
        data[f"{root}/pits"] = [{f"{root}/pits/pit_photo": name, f"{root}/pits/depth_m": 1.5 + i}
                                for i, name in enumerate(pit_photos)]
    return data


def visit_xml(version, instance_id: str, **kwargs: Any) -> bytes:  # noqa: ANN001
    """Instance XML for ``visit_data(**kwargs)`` on ``version`` (built by sync's own builder)."""
    deprecated_id = kwargs.pop("deprecated_id", None)
    return build_instance_xml(version, visit_data(**kwargs), instance_id, deprecated_id)


def batch_item(instance_id: str, *, data: dict[str, Any] | None = None, xml: bytes | None = None,
               files: dict[str, bytes] | None = None, form_id: str = "field_visit", version: str | None = "1",
               deprecated_id: str | None = None) -> dict[str, Any]:
    """One JSON batch item; ``files`` are announced by hash (name → bytes)."""
    item: dict[str, Any] = {"instance_id": instance_id, "form_id": form_id, "version": version,
                            "attachments": [{"name": n, "sha256": sha256(b), "size": len(b), "media_type": "image/jpeg"}
                                            for n, b in (files or {}).items()]}
    if xml is not None:
        item["xml"] = xml.decode()
    else:
        item["data"] = data if data is not None else visit_data()
    if deprecated_id:
        item["deprecated_id"] = deprecated_id
    return item

def jpeg(size: tuple[int, int] = (64, 48), *, gps: bool = False, color: str = "orange") -> bytes:
    """A JPEG made with Pillow; ``gps`` adds EXIF with a GPS position and a camera make."""
    image = Image.new("RGB", size, color)
    buffer = io.BytesIO()
    if gps:
        exif = Image.Exif()
        exif[0x010F] = "FieldCam"  # Make
        exif[0x8825] = {1: "S", 2: (10.0, 42.0, 0.0), 3: "E", 4: (25.0, 30.0, 0.0)}  # GPSInfo
        image.save(buffer, format="JPEG", exif=exif.tobytes(), comment=b"taken at the mine")
    else:
        image.save(buffer, format="JPEG")
    return buffer.getvalue()


def multipart(xml: bytes | None, files: dict[str, bytes] | None = None, *, boundary: str = "asmfieldBoundary123",
              extra_fields: dict[str, str] | None = None, close: bool = True) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body as Collect sends it; ``close=False`` leaves it truncated."""
    parts = []
    if xml is not None:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="xml_submission_file"; '
                     f'filename="submission.xml"\r\nContent-Type: text/xml\r\n\r\n'.encode() + xml + b"\r\n")
    for name, content in (files or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
                     f'Content-Type: image/jpeg\r\n\r\n'.encode() + content + b"\r\n")
    for name, value in (extra_fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    body = b"".join(parts) + (f"--{boundary}--\r\n".encode() if close else b"")
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-OpenRosa-Version": "1.0"}
