"""Contacts: search, a contact's page with its history, CSV import with progress, erase.

    GET  /contacts                         search (an exact address or number, or a list), paged
    GET  /contacts/{id}                    the contact, its messages and their events
    GET  /contacts/{id}/erase              the confirm step          (admin, owner)
    POST /contacts/{id}/erase              erase (the privacy service, as the API)
    GET  /contacts/import                  the upload form           (admin, owner)
    POST /contacts/import                  upload: the import runs in the background
    GET  /contacts/imports/{id}            its page, with a live progress fragment
    GET  /contacts/imports/{id}/progress   the fragment

Every page scopes by the viewer's org (another org's contact or import: 404); importing
and erasing need `manage`, as the API's routes do, and are audited as the member.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from typing import Annotated

from fastapi import BackgroundTasks, File, Form, Query, Request, Response, UploadFile

from tidings.api.deps import DatabaseDep, SessionDep, WriteSessionDep
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.console.deps import ManageViewer, ReadViewer
from tidings.console.pages import fragment, redirect, render
from tidings.console.routing import page_router
from tidings.contacts import imports
from tidings.contacts import service as contacts
from tidings.errors import FieldError
from tidings.events import service as events
from tidings.links.secret import erasure_key
from tidings.lists import service as lists
from tidings.messages import service as messages
from tidings.privacy import service as privacy

router = page_router()
PAGE = 50
HISTORY = 100


def _search_terms(q: str) -> dict[str, str]:
    """An address (has `@`) or a number (starts with `+`); anything else matches nothing
    exactly, so it is refused beside the field."""
    q = q.strip()
    if "@" in q:
        return {"email": q}
    if q.startswith("+"):
        return {"phone": q}
    return {}


@router.get("/contacts")
async def contact_list(
    request: Request,
    viewer: ReadViewer,
    session: SessionDep,
    q: Annotated[str, Query(max_length=320)] = "",
    list_id: Annotated[int | None, Query(ge=1, lt=2**63)] = None,
    after: Annotated[int | None, Query(ge=0, lt=2**63)] = None,
) -> Response:
    terms = _search_terms(q)
    errors = []
    if q.strip() and not terms:
        errors.append(FieldError("q", "search by a whole address (with @) or a number (+…)"))
    found = await contacts.list_contacts(
        session, org_id=viewer.org_id, after_id=after, limit=PAGE + 1, list_id=list_id, **terms
    )
    more = len(found) > PAGE
    found = found[:PAGE]
    all_lists = await lists.list_lists(session, org_id=viewer.org_id, after_id=None, limit=200)
    return render(request, "contacts/list.html", viewer, status_code=422 if errors else 200,
                  contacts=found, q=q, list_id=list_id, lists=all_lists, errors=errors,
                  next_after=found[-1].id if more and found else None)  # fmt: skip


@router.get("/contacts/import")
async def import_form(request: Request, viewer: ManageViewer, session: SessionDep) -> Response:
    all_lists = await lists.list_lists(session, org_id=viewer.org_id, after_id=None, limit=200)
    return render(request, "contacts/import.html", viewer, lists=all_lists, errors=[])


@router.post("/contacts/import")
async def import_upload(
    request: Request,
    viewer: ManageViewer,
    db: DatabaseDep,
    tasks: BackgroundTasks,
    file: Annotated[UploadFile | None, File()] = None,
    list_id: Annotated[list[int], Form(max_length=100)] = [],  # noqa: B006
) -> Response:
    if file is None or not file.filename:
        async with db.transaction(write=False) as session:
            found = await lists.list_lists(session, org_id=viewer.org_id, after_id=None, limit=200)
        errors = [FieldError("file", "choose a CSV file to import")]
        return render(request, "contacts/import.html", viewer, status_code=422, lists=found,
                      errors=errors)  # fmt: skip
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (the background import closes it)
    # File work in a thread: a large upload must not stall the server's other requests.
    await asyncio.to_thread(shutil.copyfileobj, file.file, spool)
    spool.seek(0)
    total = await asyncio.to_thread(imports.count_rows, spool)
    async with db.transaction() as session:
        for wanted in list_id:  # a list of another org: 404, before anything is imported
            await lists.get_list(session, org_id=viewer.org_id, list_id=wanted)
        started = await imports.start(
            session, org_id=viewer.org_id, started_by=viewer.who, total_rows=total
        )
        import_id = started.id
    tasks.add_task(imports.run, db, import_id=import_id, org_id=viewer.org_id, source=spool,
                   by=viewer, list_ids=list_id,
                   batch_size=request.app.state.settings.import_batch_size)  # fmt: skip
    return redirect(f"/contacts/imports/{import_id}", viewer, flash="Import started")


@router.get("/contacts/imports/{import_id}")
async def import_page(
    request: Request, import_id: int, viewer: ReadViewer, session: SessionDep
) -> Response:
    found = await imports.get_import(session, org_id=viewer.org_id, import_id=import_id)
    return render(request, "contacts/import_progress.html", viewer, job=found)


@router.get("/contacts/imports/{import_id}/progress")
async def import_progress(
    request: Request, import_id: int, viewer: ReadViewer, session: SessionDep
) -> Response:
    found = await imports.get_import(session, org_id=viewer.org_id, import_id=import_id)
    return fragment(request, "contacts/_import_progress.html", viewer, job=found)


@router.get("/contacts/{contact_id}")
async def contact_page(
    request: Request, contact_id: int, viewer: ReadViewer, session: SessionDep
) -> Response:
    contact = await contacts.get_contact(session, org_id=viewer.org_id, contact_id=contact_id)
    sent = await messages.list_messages(
        session, org_id=viewer.org_id, after_id=None, limit=HISTORY, contact_id=contact_id
    )
    happened = await events.list_events(
        session, org_id=viewer.org_id, after_id=None, limit=HISTORY * 5,
        message_ids=[m.id for m in sent],
    )  # fmt: skip
    by_message: dict[int, list[object]] = {}
    for event in happened:
        if event.message_id is not None:
            by_message.setdefault(event.message_id, []).append(event)
    return render(request, "contacts/contact.html", viewer, contact=contact, messages=sent,
                  events=by_message)  # fmt: skip


@router.get("/contacts/{contact_id}/erase")
async def erase_confirm(
    request: Request, contact_id: int, viewer: ManageViewer, session: SessionDep
) -> Response:
    contact = await contacts.get_contact(session, org_id=viewer.org_id, contact_id=contact_id)
    return render(request, "contacts/erase.html", viewer, contact=contact)


@router.post("/contacts/{contact_id}/erase")
async def erase(
    request: Request,
    contact_id: int,
    viewer: ManageViewer,
    session: WriteSessionDep,
    confirm: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if confirm != "yes":
        contact = await contacts.get_contact(session, org_id=viewer.org_id, contact_id=contact_id)
        return render(request, "contacts/erase.html", viewer, status_code=422, contact=contact,
                      errors=[FieldError("confirm", "tick the box to confirm")])  # fmt: skip
    erased = await privacy.erase_contact(
        session, org_id=viewer.org_id, contact_id=contact_id,
        erasure_key=erasure_key(request.app.state.settings),
    )  # fmt: skip
    at = erased.erased_at.isoformat() if erased.erased_at else None
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.CONTACT_ERASE,
                       target_id=contact_id, changes={"erased_at": {"to": at}})  # fmt: skip
    return redirect(f"/contacts/{contact_id}", viewer, flash=f"Contact {contact_id} erased")
