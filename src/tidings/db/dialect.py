"""Statements whose SQL differs between SQLite and PostgreSQL, so the difference lives here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Table,
    any_,
    bindparam,
    case,
    column,
    func,
    literal,
    null,
    select,
    text,
    true,
    type_coerce,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql import operators
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.schema import Column
from sqlalchemy.types import TypeEngine

from tidings.db.base import Base


@asynccontextmanager
async def alone(engine: AsyncEngine, key: int) -> AsyncIterator[bool]:
    """Whether this process is the only one doing the work named `key` for the block.
    PostgreSQL: a session advisory lock taken without waiting on a connection of its own,
    held across the block's transactions (yields False when another process holds it).
    SQLite: always True (one database file, and its one writer, per deployment)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as connection:
        taken = bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}))
        await connection.commit()  # hold no transaction meanwhile; the lock is the session's
        try:
            yield taken
        finally:
            if taken:
                await connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                await connection.commit()


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def locks_rows(session: AsyncSession) -> bool:
    """Whether a transaction must lock a row (`SELECT … FOR UPDATE`) to see every write
    committed before it: on PostgreSQL yes, a statement's snapshot is taken when it
    begins; on SQLite no, a write transaction is the only writer (BEGIN IMMEDIATE) and
    sees all the ones before it."""
    return dialect_name(session) == "postgresql"


def whole_part(session: AsyncSession, value: ColumnElement[Any]) -> ColumnElement[int]:
    """The whole part of a non-negative float, as an integer: PostgreSQL rounds a float
    cast to integer, so it is floored first; SQLite truncates (and may lack floor())."""
    if dialect_name(session) == "postgresql":
        return func.floor(value).cast(Integer)
    return value.cast(Integer)


def least(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    """The smaller of two values, as a CASE: PostgreSQL spells it LEAST, SQLite min()."""
    return case((a <= b, a), else_=b)


def greatest(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    """The larger of two values, as a CASE: PostgreSQL spells it GREATEST, SQLite max()."""
    return case((a >= b, a), else_=b)


def insert_ignoring_conflicts(session: AsyncSession, table: type[Base] | Table) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING` for the session's dialect."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def insert_selected_ignoring_conflicts(
    session: AsyncSession, table: type[Base] | Table, names: Sequence[str], rows: Select[Any]
) -> Insert:
    """`INSERT INTO table (names) SELECT … ON CONFLICT DO NOTHING` for the session's
    dialect. The SELECT always gets a WHERE (`WHERE 1 = 1` when it has none): without
    one, SQLite reads `ON CONFLICT` as the SELECT's join constraint, a syntax error."""
    return insert_ignoring_conflicts(session, table).from_select(list(names), rows.where(true()))


def one_of(
    session: AsyncSession,
    column: ColumnElement[Any] | QueryableAttribute[Any],
    values: Sequence[Any],
) -> ColumnElement[bool]:
    """`column` is one of `values` (ids, addresses): on PostgreSQL one array parameter
    (`= ANY($1)`), so a batch's thousands of values are one value to send and plan, and
    one statement to cache, not one parameter each, rendered anew for every length; an
    IN list on SQLite."""
    if dialect_name(session) == "postgresql":
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
    return column.in_(values)


def json_rows(
    session: AsyncSession,
    rows: Sequence[Mapping[str, Any]],
    columns: Mapping[str, TypeEngine[Any]],
    *,
    name: str = "v",
) -> dict[str, ColumnElement[Any]]:
    """`rows` sent as one JSON parameter and read back as a table: its `columns`, by name,
    to `INSERT … SELECT` from or `UPDATE … FROM`.

    However many rows, that is one value to bind and one statement to plan: SQLAlchemy's
    multi-row VALUES and executemany process every parameter of every row in Python,
    which cost a 500-row insert more than the database's work. PostgreSQL reads the array
    with `jsonb_to_recordset` (typed columns; a JSON null or a missing key is NULL),
    SQLite with `json_each` and `json_extract` (an object comes back as its JSON text,
    which a JSON column stores as it is). Values must be JSON: pass timestamps and other
    constants as literals of their column's type beside these columns, not in `rows`.
    """
    payload = json.dumps(rows, separators=(",", ":"))
    if dialect_name(session) == "postgresql":
        table = (
            func.jsonb_to_recordset(sql_cast(literal(payload), postgresql.JSONB))
            .table_valued(*(column(key, kind) for key, kind in columns.items()))
            .render_derived(name=name, with_types=True)
        )
        return {key: table.c[key] for key in columns}
    each = func.json_each(literal(payload)).table_valued("value", name=name)
    return {
        key: type_coerce(func.json_extract(each.c.value, f"$.{key}"), kind)
        for key, kind in columns.items()
    }


def rows_by_keys(
    session: AsyncSession,
    *,
    table: Table,
    org_id: int,
    column: Column[Any],
    keys: Sequence[Any],
    columns: Sequence[str] | None = None,
) -> Select[Any]:
    """The org's rows of `table` whose unique `column` (an address, the id) is one of
    `keys`: all their columns, or only the named `columns`.

    PostgreSQL: one array parameter, unnested and joined LATERAL to an equality probe on
    the column's unique index: one index lookup per key whatever the statistics say. A
    freshly filled org is planned as a few rows until autoanalyze catches up, and both
    `org_id = $1 AND column IN (…)` and a plain join then scan the whole org (measured:
    164 ms per 500 keys at 584,000 contacts, against 0.8 ms here; 11 ms per 500 ids while
    an intake run filled the table). `LIMIT 1` (the key is unique in the org) keeps the
    planner from flattening the lateral subquery into such a join. SQLite: an IN list.
    """
    chosen = [table.c[name] for name in columns] if columns else [table]
    if dialect_name(session) != "postgresql":
        org: ColumnElement[Any] = table.c.org_id
        if column.primary_key:
            # `+org_id`: for ids SQLite would otherwise choose an (org_id, …) index for the
            # org's equality and test the ids row by row (measured: 94 ms per 500 ids at
            # 1,000,000 contacts, against 0.8 ms); this way it looks each id up and checks
            # the org. An (org_id, address) key needs the org's equality to use its index.
            org = UnaryExpression(org, operator=operators.custom_op("+"))
        return select(*chosen).where(org == org_id, column.in_(keys))
    wanted = (
        func.unnest(bindparam("keys", list(keys), type_=postgresql.ARRAY(column.type)))
        .table_valued("key")
        .render_derived(name="wanted")
    )
    match = (
        select(*chosen)
        .where(table.c.org_id == org_id, column == wanted.c.key)
        .limit(1)
        .lateral("match")
    )
    return select(match).select_from(wanted).join(match, true())


def for_update(
    session: AsyncSession, query: Select[Any], *, skip_locked: bool = False, of: Any = None
) -> Select[Any]:
    """`query … FOR UPDATE [OF of] [SKIP LOCKED]` where rows need locking (`locks_rows`):
    SKIP LOCKED passes over rows another transaction holds, so concurrent workers take
    disjoint rows. On SQLite, `query` unchanged."""
    if locks_rows(session):
        return query.with_for_update(skip_locked=skip_locked, of=of)
    return query


async def lock_rows(session: AsyncSession, query: Select[Any]) -> list[Any]:
    """Lock the rows `query` selects until the transaction ends, where rows need locking
    (`locks_rows`), and return its first column; on SQLite nothing is run ([])."""
    if not locks_rows(session):
        return []
    return list((await session.execute(query.with_for_update())).scalars())


def not_by_index(session: AsyncSession, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """`column`, kept from driving SQLite's choice of index (`+column`); unchanged on
    PostgreSQL. For a join whose other side should be read once, not once per row of a
    small partial index."""
    if dialect_name(session) == "sqlite":
        return UnaryExpression(column, operator=operators.custom_op("+"), type_=column.type)
    return column


def json_object(session: AsyncSession, *pairs: Any) -> ColumnElement[Any]:
    """A JSON object built in SQL from key, value, key, value… (`jsonb_build_object` /
    `json_object`)."""
    if dialect_name(session) == "postgresql":
        return func.jsonb_build_object(*pairs)
    return func.json_object(*pairs)


def json_kind(column: Any, key: str, dialect: str) -> ColumnElement[str]:
    """The JSON type name of the value at `key`; NULL when the key is absent.

    PostgreSQL names: string, number, boolean, null, object, array. SQLite names: text,
    integer, real, true, false, null, object, array.
    """
    if dialect == "postgresql":
        return func.jsonb_typeof(column[key])
    return func.json_type(column, f'$."{key}"')


def json_present(column: Any, key: str, dialect: str) -> ColumnElement[bool]:
    """True when `key` holds a value other than JSON null, whatever its type."""
    kind = json_kind(column, key, dialect)
    return kind.is_not(None) & (kind != "null")


def json_text(column: Any, key: str, dialect: str) -> ColumnElement[str]:
    """The value at `key` when it is a JSON string, else NULL (a number or boolean never
    equals text, on either engine)."""
    text_kind = "string" if dialect == "postgresql" else "text"
    kind = json_kind(column, key, dialect)
    return case((kind == text_kind, column[key].as_string()), else_=null())


def json_number(column: Any, key: str, dialect: str) -> ColumnElement[float]:
    """The value at `key` as a float when it is a JSON number, else NULL (never a cast error)."""
    kinds = ["number"] if dialect == "postgresql" else ["integer", "real"]
    kind = json_kind(column, key, dialect)
    return case((kind.in_(kinds), column[key].as_float()), else_=null())


def json_bool(column: Any, key: str, dialect: str) -> ColumnElement[bool]:
    """The value at `key` as a boolean when it is a JSON boolean, else NULL."""
    kind = json_kind(column, key, dialect)
    if dialect == "postgresql":
        return case((kind == "boolean", column[key].as_boolean()), else_=null())
    return case((kind.in_(["true", "false"]), kind == "true"), else_=null())


def time_bucket(column: Any, interval: str, dialect: str) -> ColumnElement[Any]:
    """The start of the UTC `interval` ("minute" or "hour") holding a timestamp: a naive
    UTC timestamp on PostgreSQL, ISO text (`YYYY-MM-DD HH:MM:00`) on SQLite, which stores
    naive UTC."""
    if interval not in ("minute", "hour"):
        raise ValueError(f"interval must be minute or hour, not {interval!r}")
    if dialect == "postgresql":
        return func.date_trunc(interval, func.timezone("UTC", column))
    pattern = "%Y-%m-%d %H:%M:00" if interval == "minute" else "%Y-%m-%d %H:00:00"
    return func.strftime(pattern, column)
