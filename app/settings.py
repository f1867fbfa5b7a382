"""All settings in one place, read from ``ASMFIELD_*`` environment variables.

Every field here must be documented in README's settings table (a test checks it).
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Values that look like a secret but are known to everybody; refused as SECRET_KEY.
PLACEHOLDER_SECRETS = {"changeme", "change-me", "changethis", "secret", "dev", "test", "placeholder", ""}
SECRET_FILE_NAME = "secret_key"


class Settings(BaseSettings):
    """Server settings. Construct directly in tests: ``Settings(data_dir=tmp_path)``."""

    model_config = SettingsConfigDict(env_prefix="ASMFIELD_", env_ignore_empty=True, extra="ignore")

    data_dir: Path = Field(Path("./data"), description="Where the SQLite file, media and secret key live.")
    database_url: str | None = Field(
        None, description="SQLAlchemy URL. Default: SQLite file `asmfield.db` in DATA_DIR."
    )
    secret_key: str | None = Field(
        None, description="Signs sessions and keys dedup hashes. Default: generated into DATA_DIR by `init`."
    )
    media_dir: Path | None = Field(None, description="Content-addressed media store. Default: DATA_DIR/media.")
    base_url: str | None = Field(
        None, description="Public URL of the server (for QR codes and OpenRosa URLs behind a proxy)."
    )
    max_submission_bytes: int = Field(
        100_000_000, description="Largest OpenRosa POST body; advertised as X-OpenRosa-Accept-Content-Length."
    )
    max_attachment_bytes: int = Field(50_000_000, description="Largest single attachment or blob.")
    max_form_bytes: int = Field(20_000_000, description="Largest XLSForm/XForm/form-media upload.")
    max_image_pixels: int = Field(60_000_000, description="Images with more pixels are refused (bombs).")
    max_batch_items: int = Field(500, description="Most submissions in one JSON sync batch.")
    site_tolerance_m: float = Field(250.0, description="A point this close to a site (metres) maps to it.")
    case_retention_days: int = Field(
        3 * 365, description="Closed cases older than this have identifying fields erased by `cases purge`."
    )
    session_days: int = Field(7, description="Lifetime of a web login session.")
    export_retention_days: int = Field(7, description="Background export files are deleted this many days after they finish.")
    login_lockout_failures: int = Field(
        10, description="After this many failed logins of one username within LOGIN_LOCKOUT_MINUTES, refuse it (429)."
    )
    login_lockout_minutes: int = Field(15, description="Window (and wait) of the failed-login lockout.")
    auth_throttle_failures: int = Field(
        100, description="After this many failed authentications from one client address within AUTH_THROTTLE_MINUTES, "
        "refuse its password and token checks (429); valid device and API tokens are never refused."
    )
    auth_throttle_minutes: int = Field(15, description="Window (and wait) of the per-address authentication throttle.")
    secure_cookies: bool = Field(
        False, description="Mark cookies Secure (set to true behind HTTPS)."
    )
    pool_size: int = Field(10, description="Database connections kept open per app process (pool; SQLite and PostgreSQL).")
    upload_threads: int = Field(
        4, ge=1, description="Small OpenRosa uploads handled at once per app process; the others wait their turn, "
        "first come first served (more threads only contend for Python's lock and the database connections)."
    )
    log_level: str = Field("info", description="Log level of the server.")
    tile_url: str | None = Field(
        None, description="Online map tiles for /map, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png (off when unset)."
    )
    mbtiles: Path | None = Field(
        None, description="Offline raster base map for /map: an .mbtiles file (QGIS \"Generate XYZ tiles (MBTiles)\"), "
        "served at /tiles/{z}/{x}/{y}.png."
    )

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("postgres://") or value.startswith("postgresql://"):
            # Accept the common libpq form and pin the psycopg 3 driver.
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        if not (value.startswith("sqlite:") or value.startswith("postgresql+psycopg:")):
            raise ValueError("DATABASE_URL must be sqlite:///... or postgresql+psycopg://...")
        return value

    @field_validator("tile_url")
    @classmethod
    def _tile_template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("https://", "http://")) or "{z}" not in value or not value.split("/")[2]:
            raise ValueError("TILE_URL must be an http(s) URL template with {z}, {x} and {y}")
        return value

    @field_validator("secret_key")
    @classmethod
    def _no_placeholder(cls, value: str | None) -> str | None:
        if value is not None and (value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < 16):
            raise ValueError("SECRET_KEY is a placeholder or shorter than 16 characters; set a real secret")
        return value

    @model_validator(mode="after")
    def _absolute_paths(self) -> Settings:
        self.data_dir = Path(self.data_dir).expanduser().resolve()
        if self.media_dir is not None:
            self.media_dir = Path(self.media_dir).expanduser().resolve()
        return self

    # -- derived values ---------------------------------------------------------------

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'asmfield.db'}"

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    @property
    def media_path(self) -> Path:
        return self.media_dir or (self.data_dir / "media")

    @cached_property
    def secret(self) -> str:
        """The secret key: from the setting, else from DATA_DIR/secret_key (created by ``init``)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / SECRET_FILE_NAME
        if path.exists():
            return path.read_text().strip()
        raise RuntimeError(
            f"No secret key: set ASMFIELD_SECRET_KEY or run `asmfield init` to create {path}"
        )

    def ensure_secret(self) -> str:
        """Create DATA_DIR/secret_key when no secret is configured (used by ``init``)."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / SECRET_FILE_NAME
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return self.secret
