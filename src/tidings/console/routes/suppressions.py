"""Suppressions: the list (by channel and reason, paged), add one address, remove one.

    GET  /suppressions                     the list
    POST /suppressions                     suppress an address   (admin, owner)
    POST /suppressions/{id}/remove         take one off the list (admin, owner)

Adding goes through `suppressions.service.add` as the API's batch of one, so the
address is normalised and checked the same way; its error shows beside the field.
The audit records counts and channels only, as the API's (an address is a person's data).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Form, Query, Request, Response

from tidings.api.deps import SessionDep, WriteSessionDep, roll_back_now
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.console.deps import ManageViewer, ReadViewer
from tidings.console.pages import redirect, render
from tidings.console.routing import page_router
from tidings.errors import FieldError
from tidings.suppressions import service as suppressions

router = page_router()
PAGE = 50
REASONS = ("hard_bounce", "complaint", "unsubscribed", "stop_keyword", "soft_bounces", "manual")


async def _page(
    request: Request, viewer: ReadViewer, session: SessionDep, *, status: int = 200,
    channel: str | None = None, reason: str | None = None, after: int | None = None,
    errors: list[FieldError] | None = None, form: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    found = await suppressions.list_suppressions(
        session, org_id=viewer.org_id, after_id=after, limit=PAGE + 1, channel=channel,
        reason=reason,
    )  # fmt: skip
    more = len(found) > PAGE
    found = found[:PAGE]
    return render(request, "suppressions/list.html", viewer, status_code=status, rows=found,
                  channel=channel, reason=reason, reasons=REASONS, errors=errors or [],
                  form=form or {}, next_after=found[-1].id if more and found else None)  # fmt: skip


@router.get("/suppressions")
async def suppression_list(
    request: Request,
    viewer: ReadViewer,
    session: SessionDep,
    channel: Annotated[Literal["email", "sms"] | None, Query()] = None,
    reason: Annotated[str | None, Query(pattern=f"^({'|'.join(REASONS)})$")] = None,
    after: Annotated[int | None, Query(ge=0, lt=2**63)] = None,
) -> Response:
    return await _page(request, viewer, session, channel=channel, reason=reason, after=after)


@router.post("/suppressions")
async def add(
    request: Request,
    viewer: ManageViewer,
    session: WriteSessionDep,
    channel: Annotated[str, Form(max_length=10)] = "email",
    address: Annotated[str, Form(max_length=1000)] = "",
    note: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    row = {"channel": channel, "address": address, "reason": "manual", "source": "console",
           "note": note.strip() or None}  # fmt: skip
    report = await suppressions.add(session, org_id=viewer.org_id, rows=[row])
    if report.errors:
        await roll_back_now(request)
        errors = [FieldError(e.field.rsplit(".", 1)[-1], e.reason) for e in report.errors]
        return await _page(request, viewer, session, status=422, errors=errors,
                           form={"channel": channel, "address": address, "note": note})  # fmt: skip
    counts = {"created": report.created, "existing": report.existing, "failed": report.failed}
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.SUPPRESSION_ADD,
                       target_id=None, changes=counts)  # fmt: skip
    said = "Suppressed" if report.created else "Already suppressed"
    return redirect("/suppressions", viewer, flash=f"{said}: {channel} {address.strip()}")


@router.post("/suppressions/{suppression_id}/remove")
async def remove(suppression_id: int, viewer: ManageViewer, session: WriteSessionDep) -> Response:
    removed = await suppressions.get_suppression(
        session, org_id=viewer.org_id, suppression_id=suppression_id
    )
    changes = {"channel": {"from": removed.channel}, "reason": {"from": removed.reason}}
    await suppressions.remove(session, org_id=viewer.org_id, suppression_id=suppression_id)
    await audit.record(session, org_id=viewer.org_id, by=viewer,
                       action=Action.SUPPRESSION_REMOVE, target_id=suppression_id,
                       changes=changes)  # fmt: skip
    return redirect("/suppressions", viewer, flash=f"Suppression {suppression_id} removed")
