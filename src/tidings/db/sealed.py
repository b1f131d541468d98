"""Columns whose values are sealed at rest (`vault/keyring.py`), and their rotation.

`Sealed` (a string) and `SealedJSON` (a JSON document) seal what they write and open what
they read, so the code above sees plaintext and the database file, its dumps and its
backups see only `enc:<version>:…`. The keyring belongs to the engine (`attach`, done by
`Database`), read from the settings when a sealed value is first touched: a process that
never touches one (most CLI commands) needs no key.

A value written before sealing existed (revision 0015 keeps it as it was) reads as
plaintext until `reseal` passes: `tidings serve`, `worker` and every CLI command seal such
values when they migrate, and `tidings secrets rotate` reseals everything under the newest
key, one short transaction per batch while the service runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Column,
    Dialect,
    MetaData,
    Select,
    Table,
    Text,
    TypeDecorator,
    Update,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.vault.keyring import Keyring, is_sealed

_KEYRINGS: WeakKeyDictionary[Dialect, _Lazy] = WeakKeyDictionary()


class _Lazy:
    def __init__(self, load: Callable[[], Keyring]) -> None:
        self._load = load
        self._keyring: Keyring | None = None

    def get(self) -> Keyring:
        if self._keyring is None:
            self._keyring = self._load()
        return self._keyring


def attach(engine: AsyncEngine, load: Callable[[], Keyring]) -> None:
    """The keyring that `engine`'s sealed columns use, loaded on first use."""
    _KEYRINGS[engine.sync_engine.dialect] = _Lazy(load)


def keyring_of(dialect: Dialect) -> Keyring:
    lazy = _KEYRINGS.get(dialect)
    if lazy is None:
        raise RuntimeError("this engine has no keyring: sealed columns cannot be used")
    return lazy.get()


class Sealed(TypeDecorator[str]):
    """A string sealed at rest; `purpose` (its `table.column`) binds it to its column."""

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else keyring_of(dialect).seal(value, self.purpose)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not is_sealed(value):
            return value  # written before sealing, until `reseal` passes
        return keyring_of(dialect).open(value, self.purpose)


class SealedJSON(TypeDecorator[dict[str, Any]]):
    """A JSON object sealed at rest, whole: which keys it has is sealed too."""

    impl = Text
    cache_ok = True

    def __init__(self, purpose: str) -> None:
        super().__init__()
        self.purpose = purpose

    def process_bind_param(self, value: dict[str, Any] | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).seal(json.dumps(value, sort_keys=True), self.purpose)

    def process_result_value(self, value: str | None, dialect: Dialect) -> dict[str, Any] | None:
        if value is None:
            return None
        opened = keyring_of(dialect).open(value, self.purpose) if is_sealed(value) else value
        document: dict[str, Any] = json.loads(opened)
        return document


def _purpose(column: Column[Any]) -> str | None:
    kind = column.type
    return kind.purpose if isinstance(kind, Sealed | SealedJSON) else None


@dataclass(frozen=True, slots=True)
class SealedColumn:
    table: Table
    column: Column[Any]
    purpose: str

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"


def sealed_columns(metadata: MetaData) -> list[SealedColumn]:
    """Every sealed column of `metadata`'s tables (their key must be a single `id`)."""
    found: list[SealedColumn] = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            purpose = _purpose(column)
            if purpose is not None:
                found.append(SealedColumn(table, column, purpose))
    return found


def raw(column: Column[Any]) -> Any:
    """`column` read as the text stored, bypassing the sealing."""
    return type_coerce(column, Text)


def batch(target: SealedColumn, *, after: int, size: int) -> Select[Any]:
    """The next batch of (id, stored text) of a sealed column, in id order."""
    key = target.table.c.id
    return (
        select(key, raw(target.column))
        .where(key > after, target.column.is_not(None))
        .order_by(key)
        .limit(size)
    )


def resealed(keyring: Keyring, target: SealedColumn, stored: str) -> str | None:
    """The value to store instead of `stored`: sealed under the newest key; None when it
    is already (SecretError when no key of the keyring opens it)."""
    if not is_sealed(stored):
        return keyring.seal(stored, target.purpose)
    if keyring.is_current(stored):
        return None
    return keyring.seal(keyring.open(stored, target.purpose), target.purpose)


def replace(target: SealedColumn, ident: int, stored: str, new: str) -> Update:
    """Store `new` where the row still holds `stored` (a concurrent change wins: it was
    sealed under the newest key already)."""
    table = target.table
    return (
        update(table)
        .where(table.c.id == ident, raw(target.column) == literal(stored, Text()))
        .values({target.column.name: literal(new, Text())})
    )
