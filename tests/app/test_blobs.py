"""The blob store (``app.blobs``): what every capability codes against, the filesystem store the
composition root builds, and deleting files only once the transaction that dropped their rows
committed (``delete_after_commit``), over a real database session."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest
import typer
from sqlmodel import Session
from typer.testing import CliRunner

from app import db
from app.blobs import BlobStore, FilesystemBlobStore, check_digest, delete_after_commit
from app.cliutil import CliRoot, current_blobs
from app.db import session_scope
from app.errors import PayloadTooLarge
from app.events import Hooks
from app.models import Organisation

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = db.PACKAGES
#: The composition root (and the store itself) may build a FilesystemBlobStore; nobody else.
MAY_BUILD = {"app/blobs.py", "app/composition.py"}


def test_put_open_exists_size_and_delete(tmp_path: Path) -> None:
    store: BlobStore = FilesystemBlobStore(tmp_path)
    stored = store.put_bytes(b"hello")
    assert stored.sha256 == hashlib.sha256(b"hello").hexdigest() and stored.size == 5
    assert store.exists(stored.sha256) and store.size(stored.sha256) == 5
    with store.open(stored.sha256) as handle:
        assert handle.read() == b"hello"
    assert store.local_path(stored.sha256).read_bytes() == b"hello"
    again = store.put_stream([b"hel", b"lo"])
    assert again == stored
    store.delete(stored.sha256)
    assert not store.exists(stored.sha256)
    store.delete(stored.sha256)  # absent is fine
    assert not store.exists("not a digest")


def test_put_refuses_more_than_max_bytes_and_leaves_nothing(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * 100)
    with pytest.raises(PayloadTooLarge):
        store.put_file(source, max_bytes=10)
    assert not store.exists(hashlib.sha256(b"x" * 100).hexdigest())
    assert list(store.tmp.iterdir()) == []


def test_derived_variants_are_written_once_and_deleted_together(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    sha = store.put_bytes(b"original").sha256
    store.put_derived(sha, "thumb", b"small")
    store.put_derived(sha, "web", b"medium")
    store.put_derived(sha, "thumb", b"ignored")  # already there: kept as it was
    assert store.derived_exists(sha, "thumb") and store.derived_exists(sha, "web")
    with store.open_derived(sha, "thumb") as handle:
        assert handle.read() == b"small"
    assert store.size(sha, variant="web") == 6
    assert store.delete_derived(sha) == 2
    assert not store.derived_exists(sha, "thumb") and store.exists(sha)
    with pytest.raises(ValueError):
        store.put_derived(sha, "../escape", b"x")


def test_response_serves_the_blob_or_a_variant(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path)
    sha = store.put_bytes(b"data").sha256
    store.put_derived(sha, "thumb", b"jpeg")
    response = store.response(sha, media_type="application/octet-stream", headers={"ETag": '"x"'})
    assert (response.media_type, response.headers["etag"]) == ("application/octet-stream", '"x"')
    assert Path(response.path).read_bytes() == b"data"  # type: ignore[attr-defined]
    assert Path(store.response(sha, variant="thumb").path).read_bytes() == b"jpeg"  # type: ignore[attr-defined]


def test_digests_are_checked_before_any_path_is_built() -> None:
    with pytest.raises(ValueError):
        check_digest("../" + "a" * 61)
    assert check_digest("a" * 64) == "a" * 64


def _stored(settings, data: bytes) -> tuple[FilesystemBlobStore, str]:  # noqa: ANN001
    store = FilesystemBlobStore(settings.media_path)
    sha = store.put_bytes(data).sha256
    store.put_derived(sha, "thumb", b"t")
    return store, sha


def _touch(session: Session) -> None:
    """Give the transaction something to do, so it really commits or rolls back."""
    session.add(Organisation(name=f"org {id(session)}", kind="ngo"))
    session.flush()


def test_delete_after_commit_deletes_only_once_the_transaction_committed(settings, engine) -> None:
    store, sha = _stored(settings, b"to delete")
    with session_scope(engine) as s:
        _touch(s)
        delete_after_commit(s, store, [sha])
        s.flush()
        assert store.exists(sha)  # not before the commit
    assert not store.exists(sha) and not store.derived_exists(sha, "thumb")


def test_delete_after_commit_deletes_nothing_after_a_rollback(settings, engine) -> None:
    store, sha = _stored(settings, b"kept")
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        _touch(s)
        delete_after_commit(s, store, [sha])
        raise RuntimeError("the purge failed")
    assert store.exists(sha) and store.derived_exists(sha, "thumb")
    with Session(engine) as s:  # the same session object committing later deletes nothing either
        delete_after_commit(s, store, [sha])
        s.rollback()
        _touch(s)
        s.commit()
    assert store.exists(sha)


def test_savepoints_released_wait_for_the_outer_commit_and_rolled_back_ones_forget(settings, engine) -> None:
    store, released = _stored(settings, b"released savepoint")
    _, rolled_back = _stored(settings, b"rolled back savepoint")
    with session_scope(engine) as s:
        _touch(s)
        with s.begin_nested():
            delete_after_commit(s, store, [released])
        assert store.exists(released)  # a released savepoint is not the commit
        with pytest.raises(RuntimeError), s.begin_nested():
            delete_after_commit(s, store, [rolled_back])
            raise RuntimeError("this item failed")
    assert not store.exists(released)
    assert store.exists(rolled_back)


def test_still_used_keeps_the_file(settings, engine) -> None:
    store, sha = _stored(settings, b"still used")
    asked = []
    with session_scope(engine) as s:
        _touch(s)
        delete_after_commit(s, store, [sha], still_used=lambda conn, digest: asked.append(digest) or True)
    assert asked == [sha] and store.exists(sha)


def test_only_the_composition_root_builds_a_filesystem_blob_store() -> None:
    builders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in MAY_BUILD:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "FilesystemBlobStore":
                    builders.append(f"{relative}:{node.lineno}")
                if isinstance(node, ast.Attribute) and node.attr in {"derived_path", "root"} and relative != "app/blobs.py":
                    if isinstance(node.value, ast.Name) and node.value.id == "blobs":
                        builders.append(f"{relative}:{node.lineno} (blobs.{node.attr})")
    assert builders == []


def test_each_cli_run_gets_the_store_of_its_own_settings(tmp_path: Path) -> None:
    """Two CLI runs in one process (as in the tests): the second must not reuse the first one's
    store, or its purge deletes files in the first run's data directory and leaves its own."""

    roots: list[Path] = []
    shared = CliRoot(hooks=Hooks(), make_blobs=lambda settings: FilesystemBlobStore(settings.media_path))
    root_cli = typer.Typer(context_settings={"obj": shared})  # one object for every run, as in app.cli
    sub = typer.Typer()
    root_cli.add_typer(sub, name="cases")

    @sub.command()
    def purge(ctx: typer.Context) -> None:
        store = current_blobs(ctx)
        assert current_blobs(ctx) is store  # once per run
        roots.append(store.root)

    @sub.command()
    def other() -> None:  # a second command keeps "cases" a group
        pass

    for name in ("first", "second"):
        result = CliRunner().invoke(root_cli, ["cases", "purge"], env={
            "ASMFIELD_DATA_DIR": str(tmp_path / name), "ASMFIELD_SECRET_KEY": "x" * 32})
        assert result.exit_code == 0, (result.output, result.exception)
    assert roots == [(tmp_path / "first" / "media").resolve(), (tmp_path / "second" / "media").resolve()]
