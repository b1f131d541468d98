"""An erased person's suppression: kept under a keyed hash of the address, not the address.

Erasing a contact (`privacy.service.erase_contact`) must not forget that the person asked
not to be written to, nor keep their address. So each suppression of their addresses keeps
`address = "erased:" + HMAC-SHA256(key, channel + ":" + address)`, the key being
`links.secret.erasure_key(settings)`: the org cannot read the
address back, and the hash matches only when the same address comes again.

The skip rule compares addresses by equality on the unique (org, channel, address) index,
in SQL (broadcast expansion, the last look before sending) and in Python; none of them can
compute a keyed hash. So the dispatcher's last look before sending (`restore`, called from
`dispatcher.queries.skip_suppressed`) hashes each claimed recipient, and a hashed
suppression it matches gets its plain address back — the address is in the org's data
again anyway, on the message — and the usual rule then skips the message. Intake paths do
not see hashed rows: a message to an erased, suppressed address may be accepted, and it
ends `skipped` ("suppressed: <reason>") before anything is sent.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterable
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.dialect import one_of
from tidings.suppressions.models import SoftBounce, Suppression

PREFIX = "erased:"
SUPPRESSIONS = cast(Table, Suppression.__table__)
S = SUPPRESSIONS.c


def hashed(key: bytes, channel: str, address: str) -> str:
    """What an erased person's suppression keeps instead of the normalised `address`."""
    digest = hmac.digest(key, f"{channel}:{address}".encode(), "sha256")  # the fast path
    return PREFIX + digest.hex()


async def hide(
    session: AsyncSession, *, org_id: int, key: bytes, channel: str, address: str
) -> None:
    """Query helper for erasure: the address's suppression (if any) keeps its hash instead
    (its note, which may quote the address, is dropped), and its soft-bounce count goes."""
    secret = hashed(key, channel, address)
    already = await session.scalar(
        select(S.id).where(S.org_id == org_id, S.channel == channel, S.address == secret)
    )
    plain = (S.org_id == org_id) & (S.channel == channel) & (S.address == address)
    if already is not None:  # erased before, and suppressed again since
        await session.execute(delete(SUPPRESSIONS).where(plain))
    else:
        await session.execute(update(SUPPRESSIONS).where(plain).values(address=secret, note=None))
    await session.execute(
        delete(SoftBounce).where(SoftBounce.org_id == org_id, SoftBounce.address == address)
    )


async def restore(
    session: AsyncSession, *, key: bytes, recipients: Iterable[tuple[int, str, str | None]]
) -> int:
    """Query helper for the last look before sending: each (org, channel, address) whose
    hashed suppression exists gets it back under the plain address (dropped when a plain
    one exists too). One indexed lookup per (org, channel) of the batch; returns how many
    were restored. Only orgs with hashed suppressions on the channel pay the hashing."""
    groups: dict[tuple[int, str], set[str]] = defaultdict(set)
    for org_id, channel, address in recipients:
        if address is not None:
            groups[(org_id, channel)].add(address)
    restored = 0
    for (org_id, channel), addresses in sorted(groups.items()):
        # Most orgs have erased nobody suppressed: one probe of the index's "erased:"
        # range spares them the hashing and the lookup.
        erased_any = select(S.id).where(
            S.org_id == org_id,
            S.channel == channel,
            S.address >= PREFIX,
            S.address < PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1),
        )
        if await session.scalar(erased_any.limit(1)) is None:
            continue
        by_hash = {hashed(key, channel, a): a for a in addresses}
        found = (
            await session.execute(
                select(S.id, S.address).where(
                    S.org_id == org_id,
                    S.channel == channel,
                    one_of(session, S.address, sorted(by_hash)),
                )
            )
        ).all()
        for row_id, secret in found:
            address = by_hash[secret]
            plain = await session.scalar(
                select(S.id).where(S.org_id == org_id, S.channel == channel, S.address == address)
            )
            if plain is None:
                await session.execute(
                    update(SUPPRESSIONS).where(S.id == row_id).values(address=address)
                )
            else:
                await session.execute(delete(SUPPRESSIONS).where(S.id == row_id))
            restored += 1
    return restored
