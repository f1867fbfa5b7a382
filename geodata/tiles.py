"""Raster tiles from an MBTiles file: the offline base map of ``/map`` (``ASMFIELD_MBTILES``).

An MBTiles file (https://github.com/mapbox/mbtiles-spec, what QGIS "Generate XYZ tiles
(MBTiles)" writes) is a SQLite database with a ``tiles(zoom_level, tile_column, tile_row,
tile_data)`` table and a ``metadata(name, value)`` table. Rows are numbered the TMS way (row 0
at the south), while web maps ask for XYZ tiles (row 0 at the north): ``tile_row = 2**z - 1 - y``.

No FastAPI, no ORM: the file is opened read-only, one connection shared under a lock.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

#: metadata ``format`` -> media type of the tiles
MEDIA_TYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}


class MBTiles:
    """Read tiles by XYZ address from one .mbtiles file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no MBTiles file at {self.path}")
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        self.metadata = dict(self._query("SELECT name, value FROM metadata"))
        self.version = str(int(self.path.stat().st_mtime))

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    @property
    def media_type(self) -> str:
        """The tiles' media type from the ``format`` metadata (PNG when it is missing)."""
        return MEDIA_TYPES.get(str(self.metadata.get("format", "png")).lower(), "image/png")

    @property
    def zoom_range(self) -> tuple[int, int]:
        """(min, max) zoom from the metadata, else from the tiles themselves."""
        try:
            return int(self.metadata["minzoom"]), int(self.metadata["maxzoom"])
        except (KeyError, ValueError):
            low, high = self._query("SELECT min(zoom_level), max(zoom_level) FROM tiles")[0]
            return int(low or 0), int(high or 0)

    @property
    def bounds(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) from the metadata, if it has them."""
        try:
            west, south, east, north = (float(v) for v in str(self.metadata["bounds"]).split(","))
        except (KeyError, ValueError):
            return None
        return west, south, east, north

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ address ``z/x/y``, or None when the file has none there."""
        if z < 0 or z > 30 or not (0 <= x < 2**z and 0 <= y < 2**z):
            return None
        rows = self._query("SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                           (z, x, (2**z - 1) - y))
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
