"""Core statements compiled once and run straight on the driver's cursor.

SQLAlchemy's execution pipeline (cache lookup, parameter construction, execution context,
result object) costs more than SQLite's own work for the small statements of a button press:
bench/press_cost.py measured 296 us CPU per press with plain Connection.execute, 180 us with
the press's read and writes Prepared (bot.participation.state and .store). A Prepared keeps
what that pipeline decides per call but never changes for these statements: the SQL string,
the order of its parameters, each parameter's bind processor and each column's result
processor, all taken from SQLAlchemy's public compiler and type API. Statements still run in
the caller's Connection and its transaction; driver errors come back as SQLAlchemy's
(IntegrityError...).

Only for statements that are built once with bind parameters and run on every press;
everything else goes through Connection.execute. Not logged by `echo`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect, exc
from sqlalchemy.sql.expression import Executable

Processor = Callable[[Any], Any] | None


@dataclass
class _Compiled:
    sql: str
    positional: bool
    names: tuple[str, ...]
    constants: dict[str, Any]  # values written into the statement (status=..., skipped=False)
    binders: dict[str, Processor]
    # (index, processor) of the columns that need converting, known at the first fetch.
    columns: tuple[tuple[int, Callable[[Any], Any]], ...] | None = None


class Prepared:
    """A Core statement to run many times on one kind of database (see the module's doc)."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _compile(self.statement, dialect)
        return compiled

    def _cursor(
        self, connection: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> Any:
        dialect = connection.dialect
        compiled = self._for(dialect)
        many = not isinstance(params, Mapping)
        rows = [_bound(compiled, p) for p in params] if many else _bound(compiled, params)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            if many:
                cursor.executemany(compiled.sql, rows)
            else:
                cursor.execute(compiled.sql, rows)
        except dialect.loaded_dbapi.Error as error:
            cursor.close()
            raise exc.DBAPIError.instance(
                compiled.sql,
                rows,
                error,
                dialect.loaded_dbapi.Error,
                hide_parameters=connection.engine.hide_parameters,
                dialect=dialect,
            ) from error
        return cursor

    def run(
        self, connection: Connection, params: Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> int:
        """Run an INSERT, UPDATE or DELETE (for each of `params` if a list); the rows it
        changed. An INSERT whose new key is needed says RETURNING and is read with scalar."""
        cursor = self._cursor(connection, params)
        try:
            return cursor.rowcount  # type: ignore[no-any-return]
        finally:
            cursor.close()

    def all(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """A SELECT's rows (or an INSERT's RETURNING ones), each value converted as
        SQLAlchemy would convert it (dates, enums, JSON)."""
        compiled = self._for(connection.dialect)
        cursor = self._cursor(connection, params)
        try:
            raw = cursor.fetchall()
            if compiled.columns is None:
                compiled.columns = self._result_processors(connection.dialect, cursor)
        finally:
            cursor.close()
        converted = compiled.columns
        if not converted:
            return [tuple(row) for row in raw]
        rows = []
        for row in raw:
            values = list(row)
            for index, convert in converted:
                values[index] = convert(values[index])
            rows.append(tuple(values))
        return rows

    def _result_processors(
        self, dialect: Dialect, cursor: Any
    ) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
        # Some depend on the driver's type code for the column (PostgreSQL's numerics), which
        # only the first execution tells. Only the columns that need converting are listed.
        columns = self.statement.exported_columns  # type: ignore[attr-defined]
        found = (
            column.type.dialect_impl(dialect).result_processor(dialect, description[1])
            for column, description in zip(columns, cursor.description, strict=True)
        )
        return tuple((index, p) for index, p in enumerate(found) if p is not None)

    def scalar(self, connection: Connection, params: Mapping[str, Any]) -> Any:
        rows = self.all(connection, params)
        return rows[0][0] if rows else None


def _compile(statement: Executable, dialect: Dialect) -> _Compiled:
    compiled = statement.compile(dialect=dialect)  # type: ignore[attr-defined]
    binds = compiled.binds
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(binds)
    constants = {name: binds[name].value for name in names if not binds[name].required}
    binders = {
        name: binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    }
    return _Compiled(compiled.string, compiled.positional, names, constants, binders)


def _bound(compiled: _Compiled, params: Mapping[str, Any]) -> Any:
    values = {}
    for name in compiled.names:
        value = params[name] if name in params else compiled.constants[name]
        binder = compiled.binders[name]
        values[name] = binder(value) if binder is not None and value is not None else value
    if compiled.positional:
        return tuple(values[name] for name in compiled.names)
    return values
