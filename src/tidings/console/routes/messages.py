"""The messages log: a search by address (email or phone), status, broadcast and date,
paged in id order like the API's list (`messages.service.list_messages`, the same
query); one message's timeline (`messages.timeline`) with what the sink kept of it.

The search is a GET form: an empty field is no filter, a wrong one a 422 page naming
it. Dates are whole UTC days, both ends included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query, Request, Response

from tidings.api.deps import SessionDep
from tidings.api.fields import NO_NUL, Id, id_in
from tidings.console.deps import ReadViewer
from tidings.console.pages import render
from tidings.console.routing import page_router
from tidings.errors import FieldError, InvalidInput
from tidings.messages import service as messages
from tidings.messages.timeline import timeline
from tidings.outbox.status import MessageStatus

router = page_router()
PAGE = 50
Text = Annotated[str, Query(max_length=320, pattern=NO_NUL)]


@dataclass(frozen=True, slots=True)
class Search:
    """The search form as typed (shown back in the form) and as read."""

    address: str = ""
    status: str = ""
    broadcast_id: str = ""
    since: str = ""
    until: str = ""

    def read(self) -> Filters:
        """The filters, or InvalidInput naming each field that is wrong."""
        errors: list[FieldError] = []
        status = self.status or None
        if status is not None and status not in {s.value for s in MessageStatus}:
            errors.append(FieldError("status", "not a message status"))
        broadcast_id = None
        if self.broadcast_id.strip():
            broadcast_id = id_in(self.broadcast_id.strip())
            if broadcast_id is None:
                errors.append(FieldError("broadcast_id", "a broadcast's number"))
        days: dict[str, datetime | None] = {}
        for name, shift in (("since", 0), ("until", 1)):  # until: the day's end
            raw = getattr(self, name).strip()
            days[name] = None
            if raw:
                try:
                    day = date.fromisoformat(raw)
                except ValueError:
                    errors.append(FieldError(name, "a date, YYYY-MM-DD"))
                    continue
                midnight = datetime.combine(day, datetime.min.time(), UTC)
                days[name] = midnight + timedelta(days=shift)
        if errors:
            raise InvalidInput(errors)
        address = self.address.strip() or None
        return Filters(address, status, broadcast_id, days["since"], days["until"])


@dataclass(frozen=True, slots=True)
class Filters:
    address: str | None
    status: str | None
    broadcast_id: int | None
    since: datetime | None
    until: datetime | None


@router.get("/messages")
async def message_list(
    request: Request,
    viewer: ReadViewer,
    session: SessionDep,
    address: Text = "",
    status: Text = "",
    broadcast_id: Text = "",
    since: Text = "",
    until: Text = "",
    after: Annotated[Id | None, Query()] = None,
) -> Response:
    search = Search(address, status, broadcast_id, since, until)
    wanted = search.read()
    found = await messages.list_messages(
        session,
        org_id=viewer.org_id,
        after_id=after,
        limit=PAGE + 1,
        address=wanted.address,
        status=wanted.status,
        broadcast_id=wanted.broadcast_id,
        since=wanted.since,
        until=wanted.until,
    )
    shown = found[:PAGE]
    next_url = None
    if len(found) > PAGE:
        kept = {k: v for k, v in asdict(search).items() if v}
        next_url = "/messages?" + urlencode({**kept, "after": shown[-1].id})
    return render(
        request,
        "messages/list.html",
        viewer,
        search=search,
        rows=shown,
        next_url=next_url,
        statuses=[s.value for s in MessageStatus],
    )


KEPT = 10  # a message's copies in the sink: one per attempt that reached it


@router.get("/messages/{message_id}")
async def message_page(
    request: Request, message_id: Id, viewer: ReadViewer, session: SessionDep
) -> Response:
    story = await timeline(session, org_id=viewer.org_id, message_id=message_id)
    kept = await messages.list_sink_messages(
        session, org_id=viewer.org_id, after_id=None, limit=KEPT, message_id=message_id
    )  # what the sink recorded of it: its rendered content
    return render(request, "messages/show.html", viewer, story=story, m=story.message, kept=kept)
