"""The spatial indexes of the sites and legal areas, cached per app (``SiteIndexCache``), rebuilt when they change.

Every process keeps its own index and rebuilds it only when the ``sites_version`` counter in the
database has moved (``sites_changed`` bumps it atomically), so several app processes stay correct.
The cache is an object, not module state: ``geodata.routes.install`` creates one per app
(``app.state.site_index``), a CLI run or a test engine gets its own, and services find it through
their session's engine (``cache_of``), so two apps or two test databases never share an index.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Engine
from sqlmodel import Session

from geodata import queries, spatial


@dataclass
class Indexes:
    version: int
    sites: spatial.SiteIndex  # active sites (what visits map onto)
    codes: list[str]
    position: dict[str, int]  # code -> position in ``sites``
    legal: spatial.SiteIndex  # active legal areas (titles, ZEA, forbidden zones...): never capture visits
    legal_codes: list[str]
    legal_kinds: list[str]
    legal_layers: list[str]
    legal_title_types: list[str | None]
    legal_names: list[str]


#: session.info key of the sites version read in the session's current transaction.
_VERSION_MEMO = "geodata.sites_version"
#: Attribute of the engine holding its cache (the engine is the app's, or the CLI run's).
_ENGINE_ATTRIBUTE = "_asmfield_site_index"


class SiteIndexCache:
    """What one app (or CLI run) keeps between requests about the sites of its database.

    * the spatial indexes of the current sites version;
    * simplified geometries per (sites version, tolerance): code -> GeoJSON text;
    * recent site-list bodies, keyed by everything they depend on (``geodata.read``).
    """

    def __init__(self, *, max_lists: int = 6, max_simplified: int = 8) -> None:
        self.lock = threading.Lock()
        self._indexes: Indexes | None = None
        self._simplified: dict[tuple[int, float], dict[str, str]] = {}
        self._lists: dict[tuple, bytes] = {}
        self._max_lists = max_lists
        self._max_simplified = max_simplified

    def indexes(self, session: Session) -> Indexes:
        """The spatial indexes for the current sites (rebuilt when the sites version moved)."""
        version = sites_version(session)
        cached = self._indexes
        if cached is not None and cached.version == version:
            return cached
        built = _build(session, version)
        with self.lock:
            self._indexes = built
        return built

    def simplified(self, version: int, tolerance_m: float) -> dict[str, str]:
        """The (shared, filled by the caller) code -> simplified GeoJSON map of this version and tolerance."""
        key = (version, round(tolerance_m, 1))
        with self.lock:
            cached = self._simplified.get(key)
            if cached is None:
                if len(self._simplified) >= self._max_simplified:
                    self._simplified.clear()
                cached = self._simplified[key] = {}
            return cached

    def site_list(self, key: tuple) -> bytes | None:
        return self._lists.get(key)

    def keep_site_list(self, key: tuple, body: bytes) -> None:
        with self.lock:
            while len(self._lists) >= self._max_lists:
                self._lists.pop(next(iter(self._lists)))
            self._lists[key] = body

    def forget_site_lists(self) -> None:
        """Drop the kept site-list bodies (the next list request rebuilds its body)."""
        with self.lock:
            self._lists.clear()

    def clear(self) -> None:
        with self.lock:
            self._indexes = None
            self._simplified.clear()
            self._lists.clear()


def attach(engine: Engine, cache: SiteIndexCache | None = None) -> SiteIndexCache:
    """Make ``cache`` (a new one by default) the cache of every session bound to ``engine``."""
    cache = cache or SiteIndexCache()
    setattr(engine, _ENGINE_ATTRIBUTE, cache)
    return cache


def cache_of(session: Session) -> SiteIndexCache:
    """The cache of the session's engine (created with the engine's first lookup when no app made one)."""
    engine = session.get_bind()
    cache = getattr(engine, _ENGINE_ATTRIBUTE, None)
    if cache is None:
        cache = attach(engine)  # type: ignore[arg-type]
    return cache


def indexes(session: Session, cache: SiteIndexCache | None = None) -> Indexes:
    return (cache or cache_of(session)).indexes(session)


def sites_version(session: Session) -> int:
    """The sites counter, read once per transaction (a batch maps hundreds of submissions).

    Equivalent to reading it each time within a transaction (another transaction's bump is not
    seen before it commits, and the sites it changed are not either); ``sites_changed`` drops
    the memo.
    """
    transaction = session.get_transaction()
    memo = session.info.get(_VERSION_MEMO)
    if memo is not None and transaction is not None and memo[0] is transaction:
        return memo[1]
    version = queries.counter(session, queries.SITES_VERSION)
    session.info[_VERSION_MEMO] = (transaction, version)
    return version


def sites_changed(session: Session) -> int:
    """Bump the sites version (one atomic statement): every process rebuilds its index on its next lookup."""
    session.info.pop(_VERSION_MEMO, None)
    return queries.bump_counter(session, queries.SITES_VERSION)


def _build(session: Session, version: int) -> Indexes:
    rows = queries.index_rows(session)
    legal_rows = queries.legal_index_rows(session)
    return Indexes(
        version=version,
        sites=spatial.SiteIndex(_geometries(rows), np.array([r[0] for r in rows], dtype=np.int64)),
        codes=[r[1] for r in rows],
        position={r[1]: i for i, r in enumerate(rows)},
        legal=spatial.SiteIndex(_geometries(legal_rows), np.array([r[0] for r in legal_rows], dtype=np.int64)),
        legal_codes=[r[1] for r in legal_rows],
        legal_kinds=[r[3] for r in legal_rows],
        legal_layers=[r[4] for r in legal_rows],
        legal_title_types=[r[5] for r in legal_rows],
        legal_names=[r[6] for r in legal_rows],
    )


def _geometries(rows: list[tuple[Any, ...]]) -> np.ndarray:
    return shapely.from_geojson([r[2] for r in rows]) if rows else np.empty(0, dtype=object)
