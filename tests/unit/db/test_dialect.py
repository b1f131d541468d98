"""The SQL that differs by dialect, compiled without a database."""

from __future__ import annotations

from typing import Any, cast

import pytest
from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from tidings.contacts.models import Contact
from tidings.db.dialect import rows_by_keys

CONTACTS = cast(Table, Contact.__table__)


class _Session:
    """Just enough of a session for a statement builder that asks for the dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def get_bind(self) -> Any:
        return self


def _sql(dialect: Dialect) -> str:
    query = rows_by_keys(
        _Session(dialect),  # type: ignore[arg-type]
        table=CONTACTS,
        org_id=7,
        column=CONTACTS.c.email,
        keys=["a@example.com", "b@example.com"],
    )
    return " ".join(str(query.compile(dialect=dialect)).split())


def test_postgresql_probes_the_unique_index_once_per_key() -> None:
    sql = _sql(postgresql.dialect())
    assert "FROM unnest(" in sql  # one array parameter, not one parameter per key
    assert "JOIN LATERAL (SELECT" in sql
    # LIMIT keeps the planner from flattening the probe into a join over the whole org.
    assert "contacts.email = wanted.key LIMIT" in sql


@pytest.mark.parametrize("dialect", [sqlite.dialect()], ids=["sqlite"])
def test_sqlite_uses_an_in_list(dialect: Dialect) -> None:
    sql = _sql(dialect)
    assert "contacts.email IN (__[POSTCOMPILE_email_1])" in sql
    assert "LATERAL" not in sql
