"""Statements whose SQL differs between SQLite and PostgreSQL, so the difference lives here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Table, case, func, null
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

from tidings.db.base import Base


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def insert_ignoring_conflicts(session: AsyncSession, table: type[Base] | Table) -> Insert:
    """`INSERT … ON CONFLICT DO NOTHING` for the session's dialect."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def json_text(column: Any, key: str) -> ColumnElement[str]:
    """The value at `key` of a JSON column as text; NULL when absent or JSON null."""
    return column[key].as_string()  # type: ignore[no-any-return]


def json_number(column: Any, key: str, dialect: str) -> ColumnElement[float]:
    """The value at `key` as a float when it is a JSON number, else NULL (never a cast error)."""
    if dialect == "postgresql":
        kind = func.jsonb_typeof(column[key])
        return case((kind == "number", column[key].as_float()), else_=null())
    kind = func.json_type(column, f'$."{key}"')
    return case((kind.in_(["integer", "real"]), column[key].as_float()), else_=null())


def json_bool(column: Any, key: str, dialect: str) -> ColumnElement[bool]:
    """The value at `key` as a boolean when it is a JSON boolean, else NULL."""
    if dialect == "postgresql":
        kind = func.jsonb_typeof(column[key])
        return case((kind == "boolean", column[key].as_boolean()), else_=null())
    kind = func.json_type(column, f'$."{key}"')
    return case((kind.in_(["true", "false"]), kind == "true"), else_=null())
