"""Driver-level SQL for the few statements every upload runs (issue 13), without SQLAlchemy's
per-statement compilation, cache-key and result layers (~200 µs each on the build machine, against
~10-40 µs here).

Statements still go through the session's connection: they are in its transaction, and writes pass
SQLAlchemy's execution events (``exec_driver_sql``), which take the SQLite writer gate. Values are
converted by the columns' own types (JSON, UTC datetimes), exactly as a Core insert would store them.
Everything else keeps using the ORM and Core.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, inspect
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlmodel import Session

__all__ = ["FastInsert", "loaded", "raw_rows"]

#: Statements per dialect, written with ``?`` placeholders (SQLite's); PostgreSQL's driver wants ``%s``.
_PG_TEXT: dict[str, str] = {}


def raw_rows(session: Session, sql: str, params: tuple = ()) -> list[tuple]:
    """Run a read-only statement on the session's connection through the DB-API cursor (no SQLAlchemy
    compilation, caching or result processing: raw values, e.g. datetimes as stored text on SQLite).

    Only for reads: writes must go through SQLAlchemy, whose events take the SQLite writer gate."""
    connection = session.connection()
    raw = connection.connection.dbapi_connection
    if connection.dialect.name == "postgresql":
        sql = _PG_TEXT.get(sql) or _PG_TEXT.setdefault(sql, sql.replace("?", "%s"))
    cursor = raw.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()



def _placeholder(dialect_name: str) -> str:
    return "%s" if dialect_name == "postgresql" else "?"


class FastInsert:
    """``INSERT INTO table (columns) VALUES (...)`` of whole rows, built once per dialect and column set.

    :param on_conflict: the columns of a unique key: ``ON CONFLICT (columns) DO NOTHING`` (SQLite and PostgreSQL).
    :param returning: a column whose value ``insert_one`` returns (None when the row was not inserted).
    """

    def __init__(self, table: Table, *, on_conflict: tuple[str, ...] = (), returning: str | None = None) -> None:
        self.table = table
        self.on_conflict = on_conflict
        self.returning = returning
        self._plans: dict[tuple[str, tuple[str, ...]], tuple[str, list[Any]]] = {}

    def _plan(self, dialect: Any, names: tuple[str, ...]) -> tuple[str, list[Any]]:
        key = (dialect.name, names)
        plan = self._plans.get(key)
        if plan is None:
            columns = [self.table.c[name] for name in names]  # KeyError: a value for no column
            mark = _placeholder(dialect.name)
            sql = (f'INSERT INTO "{self.table.name}" ({", ".join(f"{chr(34)}{n}{chr(34)}" for n in names)}) '
                   f'VALUES ({", ".join(mark for _ in names)})')
            if self.on_conflict:
                sql += f' ON CONFLICT ({", ".join(f"{chr(34)}{n}{chr(34)}" for n in self.on_conflict)}) DO NOTHING'
            if self.returning:
                sql += f' RETURNING "{self.returning}"'
            processors = [c.type._cached_bind_processor(dialect) for c in columns]  # noqa: SLF001 -- the types' own conversion
            plan = self._plans[key] = (sql, processors)
        return plan

    def _params(self, processors: list[Any], names: tuple[str, ...], row: dict[str, Any]) -> tuple:
        return tuple(value if process is None or value is None else process(value)
                     for process, value in zip(processors, (row[n] for n in names), strict=True))

    def insert_one(self, session: Session, row: dict[str, Any]) -> Any:
        """Insert ``row``; the ``returning`` column's value (None: not inserted, or nothing asked)."""
        connection = session.connection()
        names = tuple(row)
        sql, processors = self._plan(connection.dialect, names)
        result = connection.exec_driver_sql(sql, self._params(processors, names, row))
        if not self.returning:
            return None
        found = result.fetchone()
        return found[0] if found is not None else None

    def insert_many(self, session: Session, rows: Sequence[dict[str, Any]]) -> None:
        """Insert ``rows`` (all with the same keys) in one executemany."""
        if not rows:
            return
        connection = session.connection()
        names = tuple(rows[0])
        sql, processors = self._plan(connection.dialect, names)
        connection.exec_driver_sql(sql, [self._params(processors, names, row) for row in rows])


def loaded(model: type, values: dict[str, Any]) -> Any:
    """A ``model`` object holding a row's ``values`` as if the ORM had loaded it (detached: ``session.add``
    attaches it clean), without the model's ``__init__`` (for a 30-column row ~20 µs against ~160 µs):
    for rows just written by ``FastInsert``, whose values are exactly what is stored."""
    mapper = inspect(model)
    if not mapper.configured:
        configure_mappers()
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(values)
    make_transient_to_detached(obj)
    return obj
