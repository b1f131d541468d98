"""Sealing again, online: every sealed column walked in id order, one short write
transaction per batch, so sending and the API go on meanwhile (`tidings secrets rotate`,
and the plaintext left by revision 0015 on first start)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import func, select

from tidings.db.engine import Database
from tidings.db.sealed import SealedColumn, batch, keyring_of, replace, resealed
from tidings.vault.keyring import is_sealed

BATCH_SIZE: Final = 500


@dataclass(slots=True)
class ResealReport:
    """What a pass did, by column: values read, values sealed again."""

    checked: dict[str, int] = field(default_factory=dict)
    resealed: dict[str, int] = field(default_factory=dict)


async def count(db: Database, columns: Sequence[SealedColumn]) -> int:
    """The values a pass reads, for a progress bar."""
    total = 0
    async with db.transaction(write=False) as session:
        for target in columns:
            query = select(func.count()).where(target.column.is_not(None))
            total += await session.scalar(query.select_from(target.table)) or 0
    return total


async def reseal(
    db: Database,
    columns: Sequence[SealedColumn],
    *,
    batch_size: int = BATCH_SIZE,
    plaintext_only: bool = False,
    progress: Callable[[int], None] = lambda done: None,
) -> ResealReport:
    """Every value of `columns` sealed under the newest key (`plaintext_only`: only those
    not sealed at all, and the keyring is read only if there is one). `progress` is told
    how many values each batch read."""
    dialect = db.engine.sync_engine.dialect
    report = ResealReport()
    for target in columns:
        after, changed, checked = 0, 0, 0
        while True:
            async with db.transaction() as session:
                found = await session.execute(batch(target, after=after, size=batch_size))
                rows = [(int(row[0]), str(row[1])) for row in found]
                for ident, stored in rows:
                    if plaintext_only and is_sealed(stored):
                        continue
                    new = resealed(keyring_of(dialect), target, stored)
                    if new is not None:
                        result = await session.execute(replace(target, ident, stored, new))
                        changed += result.rowcount  # type: ignore[attr-defined]
            if not rows:
                break
            after = rows[-1][0]
            checked += len(rows)
            progress(len(rows))
        report.resealed[target.name] = changed
        report.checked[target.name] = checked
    return report
