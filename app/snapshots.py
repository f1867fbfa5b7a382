"""Rows read on every upload, kept per process and checked against the database with one raw read.

Why (issue 13): an OpenRosa upload reads the same few rows each time — the device and its user, the
form and its version. Loading them through the ORM cost ~0.4 ms each, a quarter of the request's
Python time. Here the first load goes through the ORM as before; a read-only copy of the row is then
kept per process and engine, with the row's raw column values as its *stamp*. Later requests read
the stamp columns again with one plain DB-API statement (~10 µs) and reuse the copy only when every
value is unchanged. So nothing is ever stale — a revoked device, a deactivated user, a closed form
are seen at once, whichever process changed them — and no invalidation is needed.

The copies are shared between threads: callers only read them, never set an attribute (a row to change
is loaded into the session with ``session.get``); adding one to a session raises ``TypeError``.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.orm import defer
from sqlmodel import Session

from app.rawsql import loaded, raw_rows

T = TypeVar("T")
U = TypeVar("U")

__all__ = ["RowPairSnapshots", "RowSnapshots"]


class RowSnapshots(Generic[T]):
    """Read-only copies of ``model`` rows by primary key, reused while their stamp columns are unchanged.

    :param stamp: the columns whose values decide whether the copy is still the row (default: every
        column but ``exclude``); a column left out must never change (e.g. immutable rows).
    :param exclude: columns neither compared nor copied (big texts the callers do not read; they stay
        unloaded on the copy).
    """

    def __init__(self, model: type[T], *, stamp: tuple[str, ...] | None = None, exclude: tuple[str, ...] = (),
                 max_entries: int = 5_000) -> None:
        self.model = model
        self.options = [defer(getattr(model, c)) for c in exclude]
        table = model.__table__  # type: ignore[attr-defined]
        self.columns = tuple(c.name for c in table.columns if c.name not in exclude)
        self.stamp_columns = stamp or self.columns
        self.sql = (f"SELECT {', '.join(_quoted(c) for c in self.stamp_columns)} FROM {_quoted(table.name)} "
                    f"WHERE {_quoted(_key(table))} = ?")
        self._max = max_entries
        self._maps: weakref.WeakKeyDictionary[Engine, dict[Any, tuple[tuple, T]]] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def _map(self, session: Session) -> dict[Any, tuple[tuple, T]]:
        bind = session.get_bind()
        engine = bind.engine if isinstance(bind, Connection) else bind
        found = self._maps.get(engine)
        if found is None or len(found) >= self._max:
            with self._lock:
                found = self._maps[engine] = {}
        return found

    def get(self, session: Session, key: Any) -> T | None:
        """The row's read-only copy (None when there is no such row). One raw read when the copy is
        current; otherwise the ORM loads the row into ``session`` and a new copy is kept."""
        rows = raw_rows(session, self.sql, (key,))
        return self.current(session, key, tuple(rows[0])) if rows else None

    def current(self, session: Session, key: Any, stamp: tuple) -> T | None:
        """The copy of row ``key`` whose stamp columns were just read as ``stamp``."""
        snapshots = self._map(session)
        held = snapshots.get(key)
        if held is not None and held[0] == stamp:
            return held[1]
        row = session.get(self.model, key, options=self.options)
        if row is None:  # pragma: no cover -- deleted between the two reads
            return None
        copy = loaded(self.model, {c: getattr(row, c) for c in self.columns})
        inspect(copy).info[_READ_ONLY] = True
        # The stamp read before the ORM load: if the row changed in between, the next request sees a
        # different stamp and loads it again (never a newer stamp over an older copy).
        snapshots[key] = (stamp, copy)
        return copy

    def clear(self) -> None:
        self._maps = weakref.WeakKeyDictionary()


class RowPairSnapshots(Generic[T, U]):
    """Copies of a row and of the row its foreign key ``via`` names (a device and its user, a form version
    and its form), both checked by one raw read (a join): one round trip instead of two on every upload."""

    def __init__(self, first: RowSnapshots[T], via: str, second: RowSnapshots[U]) -> None:
        self.first, self.via, self.second = first, via, second
        a, b = first.model.__table__, second.model.__table__  # type: ignore[attr-defined]
        columns = [f"a.{_quoted(c)}" for c in first.stamp_columns] + [f"b.{_quoted(c)}" for c in second.stamp_columns]
        self.split = len(first.stamp_columns)
        self.sql = (f"SELECT {', '.join(columns)} FROM {_quoted(a.name)} AS a JOIN {_quoted(b.name)} AS b "
                    f"ON b.{_quoted(_key(b))} = a.{_quoted(via)} WHERE a.{_quoted(_key(a))} = ?")

    def get(self, session: Session, key: Any) -> tuple[T, U] | None:
        """(the row's copy, the copy of the row it refers to), None when either is missing."""
        rows = raw_rows(session, self.sql, (key,))
        if not rows:
            return None
        stamp = tuple(rows[0])
        first = self.first.current(session, key, stamp[:self.split])
        second = self.second.current(session, getattr(first, self.via), stamp[self.split:]) if first is not None else None
        return (first, second) if first is not None and second is not None else None


_READ_ONLY = "app.snapshots.read_only"


@event.listens_for(Session, "before_attach")
def _refuse_copies(_session: Session, instance: object) -> None:
    """A copy is shared by every request of the process: attached to one session it would be changed,
    expired or closed under the others' feet. Refuse it loudly instead."""
    if inspect(instance).info.get(_READ_ONLY):
        raise TypeError(f"{type(instance).__name__} {inspect(instance).identity} is a read-only copy (app.snapshots): "
                        "load the row with session.get to change it")


def _key(table: Any) -> str:
    return table.primary_key.columns.values()[0].name


def _quoted(name: str) -> str:
    return f'"{name}"'
