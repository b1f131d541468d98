"""Credits: the balance, the ledger (newest first, paged), the price table, a top-up.

    GET  /credits                 balance, ledger and prices
    POST /credits/top-ups         add credit              (admin, owner)

The top-up is checked with the API's `TopUpIn` (positive, at most 6 decimals) and
audited as the API's is.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import SessionDep, WriteSessionDep, roll_back_now
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.console.deps import ManageViewer, ReadViewer, Viewer
from tidings.console.forms import validated
from tidings.console.pages import redirect, render
from tidings.console.routing import page_router
from tidings.credits import service as credits
from tidings.credits.schemas import CreditEntryOut, TopUpIn, to_credits, to_micro
from tidings.errors import FieldError, InvalidInput

router = page_router()
PAGE = 50


async def _page(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    *,
    before: int | None = None,
    status: int = 200,
    errors: list[FieldError] | None = None,
    form: dict[str, str] | None = None,
) -> Response:
    found = await credits.credits_view(
        session, org_id=viewer.org_id, before_id=before, limit=PAGE + 1
    )
    entries = [CreditEntryOut.of(e) for e in found.entries[:PAGE]]
    more = len(found.entries) > PAGE
    prices = await credits.list_prices(session, org_id=viewer.org_id)
    return render(request, "credits/page.html", viewer, status_code=status,
                  balance=to_credits(found.balance), entries=entries, prices=prices,
                  errors=errors or [], form=form or {},
                  next_before=entries[-1].id if more and entries else None)  # fmt: skip


@router.get("/credits")
async def credits_page(
    request: Request,
    viewer: ReadViewer,
    session: SessionDep,
    before: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
) -> Response:
    return await _page(request, viewer, session, before=before)


@router.post("/credits/top-ups")
async def top_up(
    request: Request,
    viewer: ManageViewer,
    session: WriteSessionDep,
    amount: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    try:
        body = validated(TopUpIn, {"amount": amount.strip(), "note": note.strip() or None})
    except InvalidInput as exc:
        await roll_back_now(request)
        return await _page(request, viewer, session, status=422, errors=exc.errors,
                           form={"amount": amount, "note": note})  # fmt: skip
    entry = CreditEntryOut.of(
        await credits.top_up(session, org_id=viewer.org_id, amount=to_micro(body.amount),
                             note=body.note)
    )  # fmt: skip
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.CREDITS_TOP_UP,
                       target_id=entry.id, changes=diff(None, view(entry)))  # fmt: skip
    return redirect("/credits", viewer, flash=f"Added {entry.amount:g} credits")
