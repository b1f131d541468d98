"""The sink: what the built-in sink recorded instead of delivering (`channels/sink.py`),
listed newest last like the API's `GET …/sink/messages` (the same query), each one
readable whole: the email's full MIME, its subject and text parts decoded, or the SMS's
text."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from typing import Annotated

from fastapi import Query, Request, Response

from tidings.api.deps import SessionDep
from tidings.api.fields import Id
from tidings.console.deps import ReadViewer
from tidings.console.pages import render
from tidings.console.routing import page_router
from tidings.messages import service as messages

router = page_router()
PAGE = 50


def _parts(raw: str) -> list[tuple[str, str]]:
    """An email's text parts (content type, decoded text); none for what does not parse."""
    parsed = email.message_from_string(raw, policy=policy.default)
    if not isinstance(parsed, EmailMessage):
        return []
    found = []
    for part in parsed.walk():
        if part.get_content_maintype() == "text" and not part.is_attachment():
            try:
                found.append((part.get_content_type(), str(part.get_content())))
            except (LookupError, ValueError):  # an unknown charset: shown raw below
                continue
    return found


@router.get("/sink")
async def sink_list(
    request: Request,
    viewer: ReadViewer,
    session: SessionDep,
    after: Annotated[Id | None, Query()] = None,
    message_id: Annotated[Id | None, Query()] = None,
) -> Response:
    found = await messages.list_sink_messages(
        session, org_id=viewer.org_id, after_id=after, limit=PAGE + 1, message_id=message_id
    )
    shown = found[:PAGE]
    next_after = shown[-1].id if len(found) > PAGE else None
    return render(request, "sink/list.html", viewer, rows=shown, next_after=next_after)


@router.get("/sink/{sink_id}")
async def sink_page(
    request: Request, sink_id: Id, viewer: ReadViewer, session: SessionDep
) -> Response:
    kept = await messages.get_sink_message(session, org_id=viewer.org_id, sink_id=sink_id)
    parts = _parts(kept.content or "") if kept.channel == "email" else []
    return render(request, "sink/show.html", viewer, kept=kept, parts=parts)
