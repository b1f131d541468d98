"""The audit log: the org's manage actions, newest first, with the API's filters.

    GET /audit      ?action= &target_kind= &target_id= &since= &until= &before=

It needs `manage`, as `GET …/audit` does. Filters go through `audit.service.Filters`;
a bad one (an unknown action, a date that is not ISO 8601) is a 422 naming it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query, Request, Response

from tidings.api.deps import SessionDep
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.console.deps import ManageViewer
from tidings.console.pages import render
from tidings.console.routing import page_router
from tidings.errors import InvalidInput

router = page_router()
PAGE = 50
TARGET_KINDS = sorted({action.target_kind for action in Action})


def _moment(name: str, text: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput.field(
            name, "a date and time in ISO 8601, e.g. 2026-12-01T09:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("/audit")
async def audit_log(
    request: Request,
    viewer: ManageViewer,
    session: SessionDep,
    action: Annotated[Action | None, Query()] = None,
    target_kind: Annotated[str | None, Query(pattern=f"^({'|'.join(TARGET_KINDS)})$")] = None,
    target_id: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    before: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
) -> Response:
    filters = audit.Filters(
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        since=_moment("since", since),
        until=_moment("until", until),
    )
    found = await audit.list_entries(
        session, org_id=viewer.org_id, filters=filters, before_id=before, limit=PAGE + 1
    )
    more = len(found) > PAGE
    found = found[:PAGE]
    query = request.url.query
    base = "&".join(p for p in query.split("&") if p and not p.startswith("before="))
    next_url = f"/audit?{base}&before={found[-1].id}" if more and found else None
    return render(request, "audit/list.html", viewer, entries=found, actions=list(Action),
                  kinds=TARGET_KINDS, action=action, target_kind=target_kind,
                  target_id=target_id, since=since, until=until, next_url=next_url)  # fmt: skip
