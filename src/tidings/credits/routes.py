from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, decode_cursor, paged
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.credits import service
from tidings.credits.models import Price
from tidings.credits.schemas import (
    CreditEntryOut,
    CreditsOut,
    PriceOut,
    PricesIn,
    PricesOut,
    TopUpIn,
    to_credits,
    to_micro,
)
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute

router = APIRouter(prefix="/orgs/{org_id}", tags=["credits"], route_class=IdempotentRoute)


@router.get("/credits", summary="The credit balance and the ledger, newest first")
async def get_credits(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> CreditsOut:
    view = await service.credits_view(
        session, org_id=key.org_id, before_id=decode_cursor(cursor), limit=limit + 1
    )
    return CreditsOut(
        balance=to_credits(view.balance), entries=paged(view.entries, limit, CreditEntryOut.of)
    )


@router.post(
    "/credits/top-ups", status_code=201, summary="Add credit to the org", dependencies=[IDEMPOTENT]
)
async def top_up(
    org_id: Id, body: TopUpIn, key: ManageKey, session: WriteSessionDep
) -> CreditEntryOut:
    entry = CreditEntryOut.of(
        await service.top_up(
            session, org_id=key.org_id, amount=to_micro(body.amount), note=body.note
        )
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CREDITS_TOP_UP,
        target_id=entry.id,
        changes=diff(None, view(entry)),
    )
    return entry


@router.get("/prices", summary="The price table (no row: free)")
async def get_prices(org_id: Id, key: ReadKey, session: SessionDep) -> PricesOut:
    prices = await service.list_prices(session, org_id=key.org_id)
    return PricesOut(prices=[PriceOut.of(p) for p in prices])


@router.put("/prices", summary="Replace the price table")
async def put_prices(
    org_id: Id, body: PricesIn, key: ManageKey, session: WriteSessionDep
) -> PricesOut:
    before = _audited(await service.list_prices(session, org_id=key.org_id))
    rows = [service.PriceRow(p.channel, p.country, to_micro(p.amount)) for p in body.prices]
    prices = await service.set_prices(session, org_id=key.org_id, prices=rows)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.PRICES_SET,
        target_id=None,
        changes=diff(before, _audited(prices)),
    )
    return PricesOut(prices=[PriceOut.of(p) for p in prices])


def _audited(prices: list[Price]) -> dict[str, object]:
    """The price table as the audit shows it: `channel:country` → credits."""
    return {f"{p.channel}:{p.country}": PriceOut.of(p).amount for p in prices}
