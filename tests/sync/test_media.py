"""Attachments into the media store: Pillow checks, bombs, derived sizes, metadata stripping."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlmodel import select

from app.blobs import FilesystemBlobStore
from app.errors import Invalid, PayloadTooLarge, UnsupportedMedia
from app.settings import Settings
from sync import media
from sync.media import IncomingFile
from sync.models import Blob
from tests.factories import jpeg
from tests.sync.factories import (
    HEIC,
    assert_no_metadata,
    jpeg_with_metadata,
    png_header_only,
    png_with_metadata,
)

SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture
def plain_settings(tmp_path: Path) -> Settings:
    """Settings without a database: ``prepare`` needs only the limits."""
    return Settings(data_dir=tmp_path / "data", secret_key=SECRET)


def incoming(tmp_path: Path, name: str, content: bytes, media_type: str | None = "image/jpeg") -> IncomingFile:
    path = tmp_path / f"part-{len(list(tmp_path.iterdir()))}"
    path.write_bytes(content)
    return IncomingFile(name=name, path=path, size=len(content), media_type=media_type)


def test_a_jpeg_is_checked_and_measured_and_its_sizes_are_made_on_first_read(plain_settings, tmp_path):
    blobs = FilesystemBlobStore(plain_settings.media_path)
    prepared = media.prepare(incoming(tmp_path, "photo.jpg", jpeg((2000, 1000))), settings=plain_settings,
                             strip_metadata=False, workdir=tmp_path)
    assert (prepared.media_type, prepared.width, prepared.height, prepared.stripped) == ("image/jpeg", 2000, 1000, False)
    sha = media.write(blobs, prepared, settings=plain_settings).sha256
    assert not blobs.derived_exists(sha, "thumb") and not blobs.derived_exists(sha, "web")  # not in the upload
    assert media.derived(blobs, sha, "web") and media.derived(blobs, sha, "thumb")
    assert Image.open(blobs.derived_path(sha, "web")).size == (1280, 640)
    assert Image.open(blobs.derived_path(sha, "thumb")).size == (240, 120)
    made = blobs.derived_path(sha, "thumb").stat().st_mtime_ns
    assert media.derived(blobs, sha, "thumb") and blobs.derived_path(sha, "thumb").stat().st_mtime_ns == made  # once


def test_a_stored_file_that_is_not_an_image_has_no_derived_size(plain_settings, tmp_path):
    blobs = FilesystemBlobStore(plain_settings.media_path)
    prepared = media.prepare(incoming(tmp_path, "notes.txt", b"field notes", "text/plain"), settings=plain_settings,
                             strip_metadata=False, workdir=tmp_path)
    sha = media.write(blobs, prepared, settings=plain_settings).sha256
    assert not media.derived(blobs, sha, "thumb") and not blobs.derived_exists(sha, "thumb")


def test_a_file_claiming_to_be_a_jpeg_that_is_not_is_refused(plain_settings, tmp_path):
    with pytest.raises(UnsupportedMedia) as info:
        media.prepare(incoming(tmp_path, "photo.jpg", b"MZ\x90\x00 this is an executable, not a photo"),
                      settings=plain_settings, strip_metadata=False, workdir=tmp_path)
    assert info.value.code == "media.not_an_image"
    assert "photo.jpg" in info.value.message


def test_a_truncated_jpeg_is_refused(plain_settings, tmp_path):
    data = jpeg((800, 600), color="navy")
    with pytest.raises(UnsupportedMedia) as info:
        media.prepare(incoming(tmp_path, "photo.jpg", data[: len(data) // 3]), settings=plain_settings,
                      strip_metadata=True, workdir=tmp_path)
    assert info.value.code in ("media.corrupt_image", "media.not_an_image")


def test_a_decompression_bomb_is_refused_before_decoding(plain_settings, tmp_path):
    bomb = png_header_only(100_000, 100_000)
    with pytest.raises(PayloadTooLarge) as info:
        media.prepare(incoming(tmp_path, "bomb.png", bomb, "image/png"), settings=plain_settings,
                      strip_metadata=False, workdir=tmp_path)
    assert info.value.code == "media.image_too_large"
    assert "pixels" in info.value.message


def test_the_pixel_limit_comes_from_settings(tmp_path):
    strict = Settings(data_dir=tmp_path / "d", secret_key=SECRET, max_image_pixels=100 * 100)
    with pytest.raises(PayloadTooLarge, match="101x100"):
        media.prepare(incoming(tmp_path, "a.jpg", jpeg((101, 100))), settings=strict, strip_metadata=False,
                      workdir=tmp_path)


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b.jpg", "..", "a\\b.jpg", "x\x00.jpg", ""])
def test_attachment_names_must_be_plain_file_names(plain_settings, tmp_path, name):
    with pytest.raises(Invalid) as info:
        media.prepare(incoming(tmp_path, name, jpeg()), settings=plain_settings, strip_metadata=False, workdir=tmp_path)
    assert info.value.code == "media.bad_name"


def test_an_attachment_above_the_size_limit_is_refused(tmp_path):
    small = Settings(data_dir=tmp_path / "d", secret_key=SECRET, max_attachment_bytes=1000)
    with pytest.raises(PayloadTooLarge, match="limit is 1000"):
        media.prepare(incoming(tmp_path, "a.jpg", jpeg((300, 300), color="red") + b"\x00" * 1000), settings=small,
                      strip_metadata=False, workdir=tmp_path)


def test_non_images_are_kept_as_they_are(plain_settings, tmp_path):
    prepared = media.prepare(incoming(tmp_path, "voice.m4a", b"\x00\x00\x00\x18ftypM4A ", "audio/mp4"),
                             settings=plain_settings, strip_metadata=True, workdir=tmp_path)
    assert (prepared.media_type, prepared.width, prepared.stripped) == ("audio/mp4", None, False)


def test_case_photos_lose_every_metadata_byte(plain_settings, tmp_path):
    original = jpeg((320, 200), gps=True)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(0x8825)  # the fixture really has GPS
    prepared = media.prepare(incoming(tmp_path, "child.jpg", original), settings=plain_settings, strip_metadata=True,
                             workdir=tmp_path)
    stripped = prepared.path.read_bytes()
    image = Image.open(io.BytesIO(stripped))
    assert prepared.stripped and image.size == (320, 200)
    assert dict(image.getexif()) == {}
    assert not image.getexif().get_ifd(0x8825)
    assert "exif" not in image.info and "comment" not in image.info and "icc_profile" not in image.info
    assert b"Exif" not in stripped and b"FieldCam" not in stripped and b"taken at the mine" not in stripped


def test_store_writes_the_blob_and_one_row_and_the_sizes_come_on_first_read(plain_settings, session, tmp_path):
    blobs = FilesystemBlobStore(plain_settings.media_path)
    prepared = media.prepare(incoming(tmp_path, "p.jpg", jpeg((1600, 1200))), settings=plain_settings,
                             strip_metadata=False, workdir=tmp_path)
    blob = media.store(session, blobs, prepared, settings=plain_settings)
    again = media.store(session, blobs, prepared, settings=plain_settings)
    assert again.sha256 == blob.sha256
    assert blobs.path(blob.sha256).read_bytes() == prepared.path.read_bytes()
    assert (blob.size, blob.media_type, blob.width, blob.height) == (prepared.size, "image/jpeg", 1600, 1200)
    assert media.derived(blobs, blob.sha256, "thumb") and media.derived(blobs, blob.sha256, "web")
    assert Image.open(blobs.derived_path(blob.sha256, "thumb")).size == (240, 180)
    assert Image.open(blobs.derived_path(blob.sha256, "web")).size == (1280, 960)
    assert len(session.exec(select(Blob)).all()) == 1


# -- issue 9, finding 2: the bytes decide what an image is --------------------------------


@pytest.mark.parametrize(("name", "declared"), [
    ("child.heic", "image/heic"), ("photo.dat", "application/octet-stream"), ("child", None),
    ("upload.bin", "application/octet-stream"), ("child.jpg", "image/jpeg")])
def test_a_jpeg_on_a_case_form_loses_its_metadata_whatever_its_name_or_declared_type(plain_settings, tmp_path,
                                                                                    name, declared):
    original = jpeg_with_metadata()
    prepared = media.prepare(incoming(tmp_path, name, original, declared), settings=plain_settings,
                             strip_metadata=True, expects_image=True, workdir=tmp_path)
    assert prepared.stripped and prepared.media_type == "image/jpeg"
    assert prepared.source_sha256 == media._sha256_of(tmp_path / "part-0")
    assert_no_metadata(prepared.path.read_bytes())


@pytest.mark.parametrize("name", ["scan.dat", "scan", "scan.png"])
def test_a_png_loses_its_text_chunks_exif_and_icc_profile(plain_settings, tmp_path, name):
    prepared = media.prepare(incoming(tmp_path, name, png_with_metadata(), "application/octet-stream"),
                             settings=plain_settings, strip_metadata=True, workdir=tmp_path)
    assert prepared.stripped and prepared.media_type == "image/png"
    assert_no_metadata(prepared.path.read_bytes())


@pytest.mark.parametrize("name", ["child.jpg", "child.heic", "child"])
def test_an_image_that_cannot_be_cleaned_is_refused_on_a_case_form(plain_settings, tmp_path, name):
    with pytest.raises(UnsupportedMedia) as info:
        media.prepare(incoming(tmp_path, name, HEIC, "image/jpeg"), settings=plain_settings, strip_metadata=True,
                      workdir=tmp_path)
    assert (info.value.status_code, info.value.code) == (415, "media.unsupported_image")
    assert info.value.details["format"] == "HEIF"


def test_an_image_that_cannot_be_cleaned_is_kept_as_it_is_on_other_forms(plain_settings, tmp_path):
    prepared = media.prepare(incoming(tmp_path, "child.heic", HEIC, "image/heic"), settings=plain_settings,
                             strip_metadata=False, workdir=tmp_path)
    assert (prepared.media_type, prepared.stripped) == ("image/heif", False)


def test_a_file_that_is_not_an_image_is_refused_where_a_case_form_expects_a_photo(plain_settings, tmp_path):
    text = incoming(tmp_path, "notes.txt", b"not a photo at all", "text/plain")
    with pytest.raises(UnsupportedMedia) as info:
        media.prepare(text, settings=plain_settings, strip_metadata=True, expects_image=True, workdir=tmp_path)
    assert info.value.code == "media.not_an_image"
    # The same file answering a question that takes any file is kept.
    kept = media.prepare(text, settings=plain_settings, strip_metadata=True, expects_image=False, workdir=tmp_path)
    assert (kept.media_type, kept.stripped) == ("text/plain", False)


def test_a_jpeg_under_any_name_is_checked_and_typed_from_its_bytes_on_other_forms(plain_settings, tmp_path):
    prepared = media.prepare(incoming(tmp_path, "voice.m4a", jpeg((300, 200)), "audio/mp4"), settings=plain_settings,
                             strip_metadata=False, workdir=tmp_path)
    assert (prepared.media_type, prepared.width, prepared.stripped) == ("image/jpeg", 300, False)


@pytest.mark.parametrize(("head", "family"), [
    (b"\xff\xd8\xff\xe0", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF89a", "GIF"), (b"RIFF\0\0\0\0WEBPVP8 ", "WEBP"),
    (b"II*\x00", "TIFF"), (HEIC[:32], "HEIF"), (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1", "AVIF"),
    (b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom", None), (b"BMX report", None), (b"<svg xmlns=", None),
    (b"<html>", None)])
def test_image_families_are_recognised_by_magic_numbers(head, family):
    assert media.sniff(head) == family


def test_only_checked_raster_images_are_served_inline(tmp_path):
    png = tmp_path / "p"
    png.write_bytes(png_with_metadata())
    media_type, headers = media.served(png, filename="photo.jpg", stored_type="image/jpeg")
    assert media_type == "image/png" and headers["Content-Disposition"].startswith("inline")
    for content, stored, served_as in ((b"<html><script>alert(1)</script></html>", "text/html",
                                        "application/octet-stream"),
                                       (b"a,b\n1,2\n", "text/csv", "text/csv"),
                                       (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml",
                                        "application/octet-stream"),
                                       (HEIC, "image/heif", "application/octet-stream")):
        media_type, headers = media.served(content, filename="x \"y\".html", stored_type=stored)
        assert media_type == served_as
        assert headers["Content-Disposition"].startswith('attachment; filename="x _y_.html"')
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in headers["Content-Security-Policy"]
        assert "default-src 'none'" in headers["Content-Security-Policy"]
