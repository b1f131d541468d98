"""Database conventions, written down once.

- Tables are plural snake_case; keys end in `_id`; timestamps end in `_at` and are
  timezone-aware UTC (`UTCDateTime`), on SQLite as well as PostgreSQL.
- Constraint and index names come from `NAMING_CONVENTION`, so Alembic can alter them on
  both dialects (SQLite through batch mode).
- Primary keys are 64-bit integers (`BigIntPK`): on SQLite the rowid, on PostgreSQL an
  identity column. Set-based inserts (`INSERT … SELECT`) get their keys from the database.
- Every tenant-owned table carries `org_id`; no query crosses orgs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, whatever the dialect stores."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        # SQLite has no time zones: store naive UTC, attach UTC again when reading.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


BigIntPK = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit key that is SQLite's rowid (autoincrementing) on SQLite."""

JSONDoc = JSON().with_variant(JSONB(), "postgresql")
"""A JSON document: JSONB on PostgreSQL, JSON text on SQLite; both query with `col["k"]`."""

NOT_DELETED = text("deleted_at IS NULL")
"""Rows deleted softly (templates, campaigns, connections) keep their row as history, with
`deleted_at` set; their unique names hold among the rows not deleted only."""


def unique_among_live(table: str, *columns: str) -> Index:
    """A unique index on `columns` over the rows not deleted (`NOT_DELETED`), named like
    the unique constraint it stands for."""
    return Index(
        f"uq_{table}_{'_'.join(columns)}",
        *columns,
        unique=True,
        postgresql_where=NOT_DELETED,
        sqlite_where=NOT_DELETED,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime, dict[str, Any]: JSONDoc}
