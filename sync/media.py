"""Submission attachments into the content-addressed media store.

Two phases, so that a bad file refuses the whole submission before anything is stored:

1. ``prepare(file, ...)`` checks the name and size and decides from the *bytes* (magic numbers, then
   Pillow) whether the file is an image, never from its name or declared type (issue 9, finding 2).
   Images are opened with Pillow (decompression bombs are refused by pixel count before decoding);
   with ``strip_metadata`` (case forms, forms with the ``sensitive_media`` setting) they are
   re-encoded from their pixels alone, so no EXIF, GPS, XMP, IPTC, ICC profile, comment, text
   chunk or thumbnail survives (the stripped file is what will be stored; the original never is).
   There, an image we cannot decode and clean (HEIC, JPEG 2000, JPEG XL...) is refused, and so is
   anything that is not an image where the question takes an image.
2. ``store(session, blobs, prepared)`` writes the file into the blob store (temp file, fsync,
   rename) and upserts the ``Blob`` row. The caller's transaction commits the row after the file is
   durable.

The thumbnail (240 px) and web size (1280 px) JPEGs are made on their first read
(``derived(blobs, sha256, variant)``), never while a tablet waits for its 201 (issue 13: they were
most of the CPU of a photo upload, and most are never looked at).

``served(...)`` gives the headers every media response carries (finding 6): only a raster image
Pillow reads as JPEG, PNG, WebP or GIF is sent inline, with the type of its checked format; anything
else is an attachment; all of them with ``nosniff`` and a sandboxing Content-Security-Policy.
"""

from __future__ import annotations

import hashlib
import io
import mimetypes
import os
import tempfile
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, ImageOps, UnidentifiedImageError, features
from sqlmodel import Session

from app.blobs import BlobStore, StoredBlob
from app.rawsql import FastInsert
from app.settings import Settings
from app.timeutil import utcnow
from forms.models import CASE_FORM_KINDS, Form
from sync.errors import (
    MediaBadName,
    MediaCorruptImage,
    MediaEmpty,
    MediaImageTooLarge,
    MediaNotAnImage,
    MediaTooLarge,
    MediaUnsupportedImage,
)
from sync.models import Blob, BlobHolder
from sync.submission_xml import is_plain_file_name

THUMB_PX = 240
WEB_PX = 1280
#: Variants written beside each image, by name -> longest side in pixels.
DERIVED_SIZES = {"thumb": THUMB_PX, "web": WEB_PX}
#: Names that claim to be an image: on forms that are not sensitive, such a file must be one.
IMAGE_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
    ".webp": "image/webp", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
}
#: Image families (from magic numbers) Pillow decodes here -> the Pillow formats a file may open as
#: (an MPO is a JPEG with extra pictures). Anything else that looks like an image cannot be cleaned.
DECODABLE = {"JPEG": ("JPEG", "MPO"), "PNG": ("PNG",), "GIF": ("GIF",), "WEBP": ("WEBP",), "BMP": ("BMP",),
             "TIFF": ("TIFF",)}
if features.check("avif"):
    DECODABLE["AVIF"] = ("AVIF",)
#: Stored type of images we do not decode (kept as they are on forms that are not sensitive).
UNDECODED_TYPES = {"HEIF": "image/heif", "AVIF": "image/avif", "JPEG2000": "image/jp2", "JXL": "image/jxl",
                   "PSD": "image/vnd.adobe.photoshop", "QOI": "image/qoi"}
#: The format a cleaned image is written in (lossless PNG for formats browsers do not all show).
CLEAN_FORMAT = {"JPEG": "JPEG", "PNG": "PNG", "GIF": "GIF", "WEBP": "WEBP", "BMP": "PNG", "TIFF": "PNG",
                "AVIF": "JPEG"}
#: Raster images served inline (finding 6), by checked format.
INLINE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}
#: The Content-Security-Policy of every media response: nothing loads, scripts never run.
MEDIA_CSP = "default-src 'none'; sandbox"
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
                b"mif2", b"miaf"}
_SNIFF_BYTES = 64


@dataclass
class IncomingFile:
    """One received file part, already streamed to disk (``path``), named as the XML names it."""

    name: str
    path: Path | None
    size: int
    media_type: str | None = None


@dataclass
class PreparedFile:
    """A checked file ready to be stored: ``path`` is what goes into the store."""

    name: str
    path: Path
    size: int
    media_type: str
    width: int | None = None
    height: int | None = None
    stripped: bool = False
    #: sha256 of the bytes the client sent, when what is stored differs (a stripped image).
    source_sha256: str | None = None


# -- what a form wants ---------------------------------------------------------------------


def strips_metadata(form: Form) -> bool:
    """Case forms always, other forms when staff set ``sensitive_media`` (PATCH /api/v1/forms/{id})."""
    return form.kind in CASE_FORM_KINDS or (form.settings or {}).get("sensitive_media") is True


def image_fields(fields: Iterable[dict[str, Any]]) -> frozenset[str]:
    """Paths of the questions that take an image (XLSForm ``image``: an upload of ``image/*``)."""
    return frozenset(f["path"] for f in fields
                     if f.get("type") == "binary" and str(f.get("mediatype") or "").startswith("image/"))


# -- recognising images by their bytes -----------------------------------------------------


def sniff(head: bytes) -> str | None:
    """The image family of a file from its first bytes (magic numbers), or None: not an image.

    Families in ``DECODABLE`` are opened with Pillow; the others (``UNDECODED_TYPES``) are images
    we cannot clean. SVG is text, not a raster image: None.
    """
    if head[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:2] == b"BM" and len(head) >= 18 and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124):
        return "BMP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        box = int.from_bytes(head[:4], "big")
        brands = {head[8:12]} | {head[i:i + 4] for i in range(16, min(box, len(head)) - 3, 4)}
        if brands & {b"avif", b"avis"}:
            return "AVIF"
        if brands & _HEIF_BRANDS:
            return "HEIF"
        return None  # MP4, M4A, 3GP, QuickTime: not images
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xffO\xffQ":
        return "JPEG2000"
    if head[:2] == b"\xff\n" or head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n":
        return "JXL"
    if head[:4] == b"8BPS":
        return "PSD"
    if head[:4] == b"qoif":
        return "QOI"
    return None


def _head(path: Path) -> bytes:
    with Path(path).open("rb") as handle:
        return handle.read(_SNIFF_BYTES)


def guess_media_type(name: str, declared: str | None = None) -> str:
    """Media type of a file that is not an image, from its name, else the declared part type.

    Never an ``image/*`` type: the bytes decided it is not an image we checked.
    """
    guessed = mimetypes.guess_type(name)[0]
    if not guessed and declared and "/" in declared and len(declared) <= 100:
        guessed = declared.split(";")[0].strip().lower()
    if not guessed or guessed.startswith("image/"):
        return "application/octet-stream"
    return guessed


def looks_like_image(name: str, declared: str | None = None) -> bool:
    """Names and declared types that claim an image (on forms that are not sensitive, such a file
    must be one; the bytes alone decide what is done with it)."""
    ext = os.path.splitext(name)[1].lower()
    declared = (declared or "").split(";")[0].strip().lower()
    return ext in IMAGE_TYPES or declared in IMAGE_TYPES.values()


def prepare(file: IncomingFile, *, settings: Settings, strip_metadata: bool, expects_image: bool = False,
            workdir: Path | None = None) -> PreparedFile:
    """Check one attachment and get it ready for the store (see the module docstring).

    :param strip_metadata: re-encode images without any metadata, refuse images that cannot be
        cleaned (case forms, sensitive forms).
    :param expects_image: the question that references the file takes an image; with
        ``strip_metadata``, a file that is not a decodable image is then refused.
    :param workdir: where a stripped re-encoding is written (the caller removes it); needed with
        ``strip_metadata``.
    :raises Invalid: the name is not a plain file name.
    :raises PayloadTooLarge: the file or the image's pixel count exceeds the limits.
    :raises UnsupportedMedia: an image that is unreadable or cannot be cleaned, or a file that
        claims to be (or must be) an image and is not one.
    """
    if not is_plain_file_name(file.name):
        raise MediaBadName(f"attachment name {file.name[:100]!r} must be a plain file name (no directories)",
                           details={"name": file.name[:100]})
    if file.path is None:
        raise MediaEmpty(f"attachment {file.name!r} has no content")
    if file.size > settings.max_attachment_bytes:
        raise MediaTooLarge(f"attachment {file.name!r} is {file.size} bytes; the limit is "
                            f"{settings.max_attachment_bytes}", details={"name": file.name})
    family = sniff(_head(file.path))
    prepared = PreparedFile(name=file.name, path=file.path, size=file.size, media_type="application/octet-stream")
    if family in DECODABLE:
        _prepare_image(prepared, family, settings=settings, strip_metadata=strip_metadata, workdir=workdir)
    elif family is not None:
        if strip_metadata:
            raise MediaUnsupportedImage(f"attachment {file.name!r} is a {family} image, which this server cannot clean "
                                        "of its metadata; send JPEG or PNG (set the camera to 'most compatible')",
                                        details={"name": file.name, "format": family})
        prepared.media_type = UNDECODED_TYPES[family]
    elif strip_metadata and expects_image:
        raise MediaNotAnImage(f"attachment {file.name!r} answers a photo question but is not a JPEG, PNG, WebP, "
                              "GIF, BMP or TIFF image", details={"name": file.name})
    elif looks_like_image(file.name, file.media_type):
        raise MediaNotAnImage(f"attachment {file.name!r} claims to be an image but is not a readable image",
                              details={"name": file.name})
    else:
        prepared.media_type = guess_media_type(file.name, file.media_type)
    return prepared


def _open_checked(path: Path, name: str, family: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path, formats=DECODABLE[family])
    except Image.DecompressionBombError as exc:
        raise MediaImageTooLarge(f"image {name!r} has too many pixels (limit {max_pixels})",
                                 details={"name": name}) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise MediaNotAnImage(f"attachment {name!r} looks like a {family} image but is not a readable one",
                              details={"name": name}) from exc
    width, height = image.size
    if width * height > max_pixels or width <= 0 or height <= 0:
        image.close()
        raise MediaImageTooLarge(f"image {name!r} is {width}x{height} pixels; the limit is {max_pixels} pixels",
                                 details={"name": name, "width": width, "height": height})
    return image


def _mime(pillow_format: str) -> str:
    return "image/jpeg" if pillow_format == "MPO" else Image.MIME.get(pillow_format, "application/octet-stream")


def _prepare_image(prepared: PreparedFile, family: str, *, settings: Settings, strip_metadata: bool,
                   workdir: Path | None) -> None:
    name = prepared.name
    if strip_metadata and workdir is None:
        raise ValueError("stripping metadata needs a workdir for the re-encoded file")
    image = _open_checked(prepared.path, name, family, settings.max_image_pixels)
    try:
        prepared.media_type = _mime(image.format)
        prepared.width, prepared.height = image.size
        if strip_metadata:
            image.load()
            clean = _without_metadata(ImageOps.exif_transpose(image))
            fmt = CLEAN_FORMAT[family]
            if fmt == "JPEG" and clean.mode not in ("RGB", "L", "CMYK"):
                clean = clean.convert("RGB")
            fd, tmp = tempfile.mkstemp(dir=workdir, suffix=".img")
            with os.fdopen(fd, "wb") as out:
                if fmt == "JPEG":
                    clean.save(out, format="JPEG", quality=90)
                else:
                    clean.save(out, format=fmt)
            prepared.source_sha256 = _sha256_of(prepared.path)
            prepared.path = Path(tmp)
            prepared.size = os.path.getsize(tmp)
            prepared.media_type = _mime(fmt)
            prepared.width, prepared.height = clean.size
            prepared.stripped = True
        else:
            if image.format == "JPEG":  # only checked here, not kept: decoded at 1/8 scale, which still reads
                # every byte of the compressed data (a truncated or corrupt file fails) but skips most of
                # the inverse DCT (issue 13: ~4x less CPU per photo than at 1280 px)
                width, height = image.size
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise MediaCorruptImage(f"image {name!r} is truncated or corrupt: {exc}",
                                details={"name": name}) from exc
    finally:
        image.close()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _without_metadata(image: Image.Image) -> Image.Image:
    """The same pixels in a fresh image: no EXIF, GPS, XMP, ICC profile, comments or text chunks."""
    if image.mode == "P":
        image = image.convert("RGBA")
    elif image.mode not in ("RGB", "RGBA", "L", "LA", "CMYK", "I;16", "I", "F", "1"):
        image = image.convert("RGB")
    return Image.frombytes(image.mode, image.size, image.tobytes())


#: One maker of derived sizes at a time in this process (a page of thumbnails asks for each once;
#: across processes the store's write-once rename keeps the first complete file).
_DERIVING = threading.Lock()


def derived(blobs: BlobStore, sha256: str, variant: str) -> bool:
    """Make sure the ``variant`` (``thumb``/``web``) JPEG of a stored image exists, making it now
    (once) if not; False when the stored file is not an image this server decodes. Race-safe:
    a second caller finds the file the first one wrote."""
    if blobs.derived_exists(sha256, variant):
        return True
    path = blobs.local_path(sha256)
    if sniff(_head(path)) not in DECODABLE:
        return False
    with _DERIVING:
        if blobs.derived_exists(sha256, variant):
            return True
        longest = DERIVED_SIZES[variant]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    if image.format == "JPEG":
                        image.draft("RGB", (longest, longest))
                    image.load()
                    copy = ImageOps.exif_transpose(image)
                    copy = copy if copy.mode == "RGB" else copy.convert("RGB")
                    copy.thumbnail((longest, longest))
                    buffer = io.BytesIO()
                    copy.save(buffer, format="JPEG", quality=82)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            return False
        blobs.put_derived(sha256, variant, buffer.getvalue())
    return True


def write(blobs: BlobStore, prepared: PreparedFile, *, settings: Settings) -> StoredBlob:
    """Put a prepared file into the store (durable when this returns); derived sizes come on first read.

    Needs no database, so callers can do it before their transaction takes any write lock.
    """
    return blobs.put_file(prepared.path, max_bytes=settings.max_attachment_bytes)


def record(session: Session, prepared: PreparedFile, stored: StoredBlob, *, holder: int | None = None) -> Blob:
    """The ``Blob`` row of a file ``write`` stored; ``holder`` (the user who sent the bytes) is
    remembered as holding the bytes they sent (``BlobHolder``; for a stripped image the original's
    hash, not the re-encoding's)."""
    if holder is not None:
        record_holder(session, user_id=holder, sha256=prepared.source_sha256 or stored.sha256)
    return upsert_blob(session, sha256=stored.sha256, size=stored.size, media_type=prepared.media_type,
                       width=prepared.width, height=prepared.height)


def store(session: Session, blobs: BlobStore, prepared: PreparedFile, *, settings: Settings,
          holder: int | None = None) -> Blob:
    """Put a prepared file into the store and upsert its ``Blob`` row."""
    return record(session, prepared, write(blobs, prepared, settings=settings), holder=holder)


def upsert_blob(session: Session, *, sha256: str, size: int, media_type: str, width: int | None = None,
                height: int | None = None) -> Blob:
    """Insert the ``Blob`` row unless it exists (race-free on SQLite and PostgreSQL)."""
    _INSERT_BLOB.insert_one(session, dict(sha256=sha256, size=size, media_type=media_type[:100], width=width,
                                          height=height, created_at=utcnow()))
    blob = session.get(Blob, sha256)
    assert blob is not None
    return blob


def record_holder(session: Session, *, user_id: int, sha256: str) -> None:
    """Remember that ``user_id`` sent these bytes (idempotent, race-free)."""
    _INSERT_HOLDER.insert_one(session, dict(sha256=sha256, user_id=user_id, created_at=utcnow()))


#: Driver-level inserts (``app.rawsql``): every attachment of every upload runs both (issue 13).
_INSERT_BLOB = FastInsert(Blob.__table__, on_conflict=("sha256",))  # type: ignore[attr-defined]
_INSERT_HOLDER = FastInsert(BlobHolder.__table__, on_conflict=("sha256", "user_id"))  # type: ignore[attr-defined]


# -- serving -------------------------------------------------------------------------------


def checked_raster_type(source: Path | bytes) -> str | None:
    """``image/jpeg|png|webp|gif`` when the bytes are such an image as Pillow reads it, else None."""
    head = source[:_SNIFF_BYTES] if isinstance(source, bytes) else _head(source)
    family = sniff(head)
    if family not in INLINE_TYPES:
        return None
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source, formats=DECODABLE[family]) as im:
            return INLINE_TYPES[family] if im.width > 0 and im.height > 0 else None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def content_disposition(kind: str, filename: str) -> str:
    """``attachment; filename="..."`` with an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "file"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def served(source: Path | bytes, *, filename: str, stored_type: str | None) -> tuple[str, dict[str, str]]:
    """(Content-Type, headers) for sending a stored file to a browser (issue 9, finding 6).

    A raster image Pillow reads as JPEG, PNG, WebP or GIF goes inline with the type of that format;
    anything else is an attachment (never shown on our origin), with its stored type unless that
    claims an image or is a document type (HTML, XML, SVG, script): then ``application/octet-stream``.
    Every media response gets ``nosniff`` and a sandboxing CSP.
    """
    headers = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": MEDIA_CSP}
    checked = checked_raster_type(source)
    if checked is not None:
        headers["Content-Disposition"] = content_disposition("inline", filename)
        return checked, headers
    headers["Content-Disposition"] = content_disposition("attachment", filename)
    media_type = (stored_type or "").split(";")[0].strip().lower()
    if not media_type or "/" not in media_type or media_type.startswith("image/") or _active(media_type):
        media_type = "application/octet-stream"
    return media_type, headers


def _active(media_type: str) -> bool:
    """Types a browser renders as a document that may run script (HTML, XML, SVG, JavaScript)."""
    return ("html" in media_type or "xml" in media_type or "javascript" in media_type
            or "ecmascript" in media_type)
