"""Settings: defaults, the ASMFIELD_ prefix, database URLs and the secret key."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import SECRET_FILE_NAME, Settings


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == tmp_path / "data"
    assert settings.db_url == f"sqlite:///{tmp_path / 'data' / 'asmfield.db'}"
    assert settings.is_sqlite
    assert settings.media_path == tmp_path / "data" / "media"
    assert settings.max_submission_bytes == 100_000_000
    assert settings.site_tolerance_m == 250.0
    assert settings.secure_cookies is False


def test_environment_variables_use_the_asmfield_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("ASMFIELD_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("ASMFIELD_MAX_BATCH_ITEMS", "7")
    monkeypatch.setenv("ASMFIELD_SECURE_COOKIES", "true")
    monkeypatch.setenv("ASMFIELD_MEDIA_DIR", str(tmp_path / "photos"))
    monkeypatch.setenv("MAX_BATCH_ITEMS", "99")  # without the prefix: ignored
    settings = Settings()
    assert settings.data_dir == tmp_path / "elsewhere"
    assert settings.max_batch_items == 7
    assert settings.secure_cookies is True
    assert settings.media_path == tmp_path / "photos"


def test_empty_environment_variables_mean_the_default(monkeypatch):
    monkeypatch.setenv("ASMFIELD_DATABASE_URL", "")
    assert Settings().database_url is None


def test_relative_data_dir_becomes_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert Settings(data_dir=Path("site-a")).data_dir == tmp_path / "site-a"


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("sqlite:////srv/asmfield/a.db", "sqlite:////srv/asmfield/a.db"),
        ("postgresql+psycopg://asm@db/asmfield", "postgresql+psycopg://asm@db/asmfield"),
        ("postgresql://asm@db/asmfield", "postgresql+psycopg://asm@db/asmfield"),
        ("postgres://asm:pw@db:5433/asmfield", "postgresql+psycopg://asm:pw@db:5433/asmfield"),
    ],
)
def test_database_url_forms(given, stored):
    settings = Settings(database_url=given, secret_key="s" * 32)
    assert settings.db_url == stored
    assert settings.is_sqlite == stored.startswith("sqlite")


@pytest.mark.parametrize("url", ["mysql://root@db/x", "postgresql+psycopg2://asm@db/x", "asmfield.db"])
def test_unknown_database_drivers_are_refused(url):
    with pytest.raises(ValidationError, match="DATABASE_URL must be"):
        Settings(database_url=url)


@pytest.mark.parametrize("secret", ["changeme", "changethis", "secret", "CHANGE-ME", "short-but-real"])
def test_placeholder_or_short_secret_keys_are_refused(secret):
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(secret_key=secret)


def test_placeholder_secret_from_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("ASMFIELD_SECRET_KEY", "changethis")
    with pytest.raises(ValidationError, match="placeholder"):
        Settings()


def test_a_real_secret_key_is_used_as_given(tmp_path):
    settings = Settings(data_dir=tmp_path, secret_key="a-real-secret-of-32-characters!!")
    assert settings.secret == "a-real-secret-of-32-characters!!"
    assert settings.ensure_secret() == "a-real-secret-of-32-characters!!"
    assert not (tmp_path / SECRET_FILE_NAME).exists()


def test_without_a_secret_the_server_refuses_to_start(tmp_path):
    with pytest.raises(RuntimeError, match="asmfield init"):
        Settings(data_dir=tmp_path).secret  # noqa: B018


def test_init_generates_a_private_secret_once(tmp_path):
    first = Settings(data_dir=tmp_path / "data").ensure_secret()
    path = tmp_path / "data" / SECRET_FILE_NAME
    assert len(first) >= 48
    assert path.stat().st_mode & 0o777 == 0o600
    again = Settings(data_dir=tmp_path / "data")
    assert again.ensure_secret() == first
    assert again.secret == first
