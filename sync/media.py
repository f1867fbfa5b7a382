"""Submission attachments into the content-addressed media store.

Two phases, so that a bad file refuses the whole submission before anything is stored:

1. ``prepare(file, ...)`` checks the name and size, opens images with Pillow (a file that claims
   to be an image and is not is refused; decompression bombs are refused by pixel count before
   decoding), re-encodes images of case forms with every byte of metadata dropped (the stripped
   file is what will be stored; the original never is), and renders the derived sizes in memory.
2. ``store(session, blobs, prepared)`` writes the file into the blob store (temp file, fsync,
   rename), writes the thumbnail (240 px) and web size (1280 px) JPEGs beside it, and upserts the
   ``Blob`` row. The caller's transaction commits the row after the file is durable.
"""

from __future__ import annotations

import io
import mimetypes
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from app.blobs import FilesystemBlobStore, StoredBlob
from app.errors import Invalid, PayloadTooLarge, UnsupportedMedia
from app.settings import Settings
from sync.models import Blob
from sync.submission_xml import is_plain_file_name

THUMB_PX = 240
WEB_PX = 1280
#: Variants written beside each image, by name -> longest side in pixels.
DERIVED_SIZES = {"thumb": THUMB_PX, "web": WEB_PX}
IMAGE_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
    ".webp": "image/webp", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
}
_SAVE_FORMATS = {"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"}


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
    derived: dict[str, Image.Image] = field(default_factory=dict)


def guess_media_type(name: str, declared: str | None = None) -> str:
    """Media type from the file name, else the declared part type, else octet-stream."""
    ext = os.path.splitext(name)[1].lower()
    if ext in IMAGE_TYPES:
        return IMAGE_TYPES[ext]
    guessed = mimetypes.guess_type(name)[0]
    if guessed:
        return guessed
    if declared and "/" in declared and len(declared) <= 100:
        return declared.split(";")[0].strip().lower()
    return "application/octet-stream"


def looks_like_image(name: str, declared: str | None = None) -> bool:
    """Names and declared types that Pillow must be able to open (others are stored as they are)."""
    ext = os.path.splitext(name)[1].lower()
    declared = (declared or "").split(";")[0].strip().lower()
    return ext in IMAGE_TYPES or declared in IMAGE_TYPES.values()


def prepare(file: IncomingFile, *, settings: Settings, strip_metadata: bool, workdir: Path | None = None) -> PreparedFile:
    """Check one attachment and get it ready for the store (see the module docstring).

    :param strip_metadata: re-encode images without EXIF/GPS/XMP/ICC/text (case forms).
    :param workdir: where a stripped re-encoding is written (the caller removes it); needed with
        ``strip_metadata``.
    :raises Invalid: the name is not a plain file name.
    :raises PayloadTooLarge: the file or the image's pixel count exceeds the limits.
    :raises UnsupportedMedia: the file claims to be an image and is not one.
    """
    if not is_plain_file_name(file.name):
        raise Invalid(f"attachment name {file.name[:100]!r} must be a plain file name (no directories)",
                      code="media.bad_name", details={"name": file.name[:100]})
    if file.path is None:
        raise Invalid(f"attachment {file.name!r} has no content", code="media.empty")
    if file.size > settings.max_attachment_bytes:
        raise PayloadTooLarge(f"attachment {file.name!r} is {file.size} bytes; the limit is "
                              f"{settings.max_attachment_bytes}", code="media.too_large", details={"name": file.name})
    media_type = guess_media_type(file.name, file.media_type)
    prepared = PreparedFile(name=file.name, path=file.path, size=file.size, media_type=media_type)
    if looks_like_image(file.name, file.media_type):
        _prepare_image(prepared, settings=settings, strip_metadata=strip_metadata, workdir=workdir)
    return prepared


def _open_checked(path: Path, name: str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(f"image {name!r} has too many pixels (limit {max_pixels})",
                              code="media.image_too_large", details={"name": name}) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UnsupportedMedia(f"attachment {name!r} claims to be an image but is not a readable image",
                               code="media.not_an_image", details={"name": name}) from exc
    if image.format not in _SAVE_FORMATS:
        image.close()
        raise UnsupportedMedia(f"attachment {name!r} is a {image.format} image; use JPEG or PNG",
                               code="media.not_an_image", details={"name": name})
    width, height = image.size
    if width * height > max_pixels or width <= 0 or height <= 0:
        image.close()
        raise PayloadTooLarge(f"image {name!r} is {width}x{height} pixels; the limit is {max_pixels} pixels",
                              code="media.image_too_large", details={"name": name, "width": width, "height": height})
    return image


def _prepare_image(prepared: PreparedFile, *, settings: Settings, strip_metadata: bool, workdir: Path | None) -> None:
    name = prepared.name
    if strip_metadata and workdir is None:
        raise ValueError("stripping metadata needs a workdir for the re-encoded file")
    image = _open_checked(prepared.path, name, settings.max_image_pixels)
    try:
        prepared.media_type = Image.MIME.get(image.format, prepared.media_type)
        prepared.width, prepared.height = image.size
        fmt = image.format
        if strip_metadata:
            image.load()
            clean = _without_metadata(ImageOps.exif_transpose(image))
            fd, tmp = tempfile.mkstemp(dir=workdir, suffix=os.path.splitext(name)[1] or ".img")
            with os.fdopen(fd, "wb") as out:
                if fmt == "JPEG":
                    clean.save(out, format="JPEG", quality=90)
                else:
                    clean.save(out, format=fmt)
            prepared.path = Path(tmp)
            prepared.size = os.path.getsize(tmp)
            prepared.width, prepared.height = clean.size
            prepared.stripped = True
            source = clean
        else:
            if fmt == "JPEG":
                image.draft("RGB", (WEB_PX, WEB_PX))
            image.load()
            source = ImageOps.exif_transpose(image)
        prepared.derived = _derived(source)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise UnsupportedMedia(f"image {name!r} is truncated or corrupt: {exc}", code="media.corrupt_image",
                               details={"name": name}) from exc
    finally:
        image.close()


def _without_metadata(image: Image.Image) -> Image.Image:
    """The same pixels in a fresh image: no EXIF, GPS, XMP, ICC profile, comments or text chunks."""
    if image.mode == "P":
        image = image.convert("RGBA")
    elif image.mode not in ("RGB", "RGBA", "L", "LA", "CMYK", "I;16", "I", "F", "1"):
        image = image.convert("RGB")
    return Image.frombytes(image.mode, image.size, image.tobytes())


def _derived(image: Image.Image) -> dict[str, Image.Image]:
    """Thumbnail and web-size copies, RGB, longest side at most the variant's size."""
    base = image if image.mode == "RGB" else image.convert("RGB")
    out: dict[str, Image.Image] = {}
    web = base.copy()
    web.thumbnail((WEB_PX, WEB_PX))
    out["web"] = web
    thumb = web.copy()
    thumb.thumbnail((THUMB_PX, THUMB_PX))
    out["thumb"] = thumb
    return out


def write(blobs: FilesystemBlobStore, prepared: PreparedFile, *, settings: Settings) -> StoredBlob:
    """Put a prepared file into the store (durable when this returns) and write its derived sizes.

    Needs no database, so callers can do it before their transaction takes any write lock.
    """
    stored = blobs.put_file(prepared.path, max_bytes=settings.max_attachment_bytes)
    for variant, image in prepared.derived.items():
        target = blobs.derived_path(stored.sha256, variant)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=82)
            fd, tmp = tempfile.mkstemp(dir=blobs.tmp)
            with os.fdopen(fd, "wb") as out:
                out.write(buffer.getvalue())
            os.replace(tmp, target)
    return stored


def record(session: Session, prepared: PreparedFile, stored: StoredBlob) -> Blob:
    """The ``Blob`` row of a file ``write`` stored."""
    return upsert_blob(session, sha256=stored.sha256, size=stored.size, media_type=prepared.media_type,
                       width=prepared.width, height=prepared.height)


def store(session: Session, blobs: FilesystemBlobStore, prepared: PreparedFile, *, settings: Settings) -> Blob:
    """Put a prepared file into the store, write its derived sizes, upsert its ``Blob`` row."""
    return record(session, prepared, write(blobs, prepared, settings=settings))


def upsert_blob(session: Session, *, sha256: str, size: int, media_type: str, width: int | None = None,
                height: int | None = None) -> Blob:
    """Insert the ``Blob`` row unless it exists (race-free on SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    values = dict(sha256=sha256, size=size, media_type=media_type[:100], width=width, height=height)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    from app.timeutil import utcnow

    session.execute(insert(Blob).values(created_at=utcnow(), **values).on_conflict_do_nothing(index_elements=["sha256"]))
    blob = session.get(Blob, sha256)
    assert blob is not None
    return blob
