"""Statements whose SQL differs between SQLite and PostgreSQL, so the difference lives here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    Table,
    bindparam,
    case,
    func,
    null,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.schema import Column

from tidings.db.base import Base


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def insert_ignoring_conflicts(session: AsyncSession, table: type[Base] | Table) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING` for the session's dialect."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def rows_by_keys(
    session: AsyncSession, *, table: Table, org_id: int, column: Column[str], keys: list[str]
) -> Select[Any]:
    """The org's rows of `table` whose unique `column` is one of `keys`.

    PostgreSQL: one array parameter, unnested and joined LATERAL to an equality probe on
    the unique (org_id, column) index: one index lookup per key whatever the statistics
    say. A freshly filled org is planned as a few rows until autoanalyze catches up, and
    both `org_id = $1 AND column IN (…)` and a plain join then scan the whole org (measured:
    164 ms per 500 keys at 584,000 contacts, against 0.8 ms here). `LIMIT 1` (the key is
    unique in the org) keeps the planner from flattening the lateral subquery into such a
    join. SQLite plans the IN list as index lookups itself.
    """
    if dialect_name(session) != "postgresql":
        return select(table).where(table.c.org_id == org_id, column.in_(keys))
    wanted = (
        func.unnest(bindparam("keys", keys, type_=postgresql.ARRAY(String)))
        .table_valued("key")
        .render_derived(name="wanted")
    )
    match = (
        select(table)
        .where(table.c.org_id == org_id, column == wanted.c.key)
        .limit(1)
        .lateral("match")
    )
    return select(match).select_from(wanted).join(match, true())


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
