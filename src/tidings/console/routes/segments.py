"""Segments: the list, a segment's page, and a builder with a live count.

    GET  /segments                 the org's segments with their counts now
    GET  /segments/new             the builder                (admin, owner save; all count)
    POST /segments/count           the builder's live count (htmx, on every change)
    POST /segments                 save the built segment     (admin, owner)
    GET  /segments/{id}            its filter, count and first contacts
    GET  /segments/{id}/edit       name, description, filter (JSON)  (admin, owner)
    POST /segments/{id}/edit       change it, as `PATCH …/segments/{id}`
    GET  /segments/{id}/delete     the confirmation step      (admin, owner)
    POST /segments/{id}/delete     delete it                  (admin, owner)

The builder writes the filter language of docs/segments.md: up to `ROWS` conditions
(field, op, value) joined by "all" (`and`) or "any" (`or`), and optionally "on list".
A value is typed as the CSV importer types a cell (`importer.typed_cell`: `10` is a
number, `true` a boolean, `007` text); `in` and `not_in` take comma-separated values.
The count and the save go through the segments service, which checks the tree as the
API does and names the wrong part. A saved segment is edited as the API's JSON filter
(any tree the language allows, nested groups too, which the builder does not draw).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request, Response
from starlette.datastructures import FormData

from tidings.api.deps import SessionDep, WriteSessionDep, roll_back_now
from tidings.api.fields import Id
from tidings.api.patch import changes_of
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff
from tidings.console.deps import ManageViewer, ReadViewer, Viewer
from tidings.console.forms import validated
from tidings.console.pages import fragment, redirect, render
from tidings.console.routing import page_router
from tidings.contacts.importer import typed_cell
from tidings.errors import FieldError, InvalidInput
from tidings.lists import service as lists
from tidings.segments import service as segments
from tidings.segments.filters import COLUMNS, OPS, TIMESTAMPS
from tidings.segments.routes import audited_segment, segment_out
from tidings.segments.schemas import SegmentChanges, SegmentCreate, SegmentOut, SegmentUpdate

router = page_router()
ROWS = 5
FIELDS = (*COLUMNS, *TIMESTAMPS, "attributes.")
_NO_VALUE = ("exists", "not_exists")
_MANY = ("in", "not_in")


def _text(form: FormData, name: str, limit: int = 2000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def built_filter(form: FormData) -> dict[str, Any]:
    """The filter tree the builder's rows describe ({} when they describe nothing)."""
    parts: list[dict[str, Any]] = []
    for row in range(ROWS):
        field = _text(form, f"field_{row}", 100)
        if not field:
            continue
        op = _text(form, f"op_{row}", 20) or "eq"
        condition: dict[str, Any] = {"field": field, "op": op}
        raw = _text(form, f"value_{row}")
        if op in _MANY:
            condition["value"] = [typed_cell(v.strip()) for v in raw.split(",") if v.strip()]
        elif op not in _NO_VALUE:
            condition["value"] = typed_cell(raw)
        parts.append(condition)
    in_list = _text(form, "in_list", 20)
    if in_list:
        parts.append({"in_list": int(in_list) if in_list.isdigit() else in_list})
    if not parts:
        return {}
    if len(parts) == 1:
        return parts[0]
    return {"or" if _text(form, "match") == "any" else "and": parts}


async def _builder(
    request: Request, viewer: Any, session: Any, *, status: int = 200, **context: Any
) -> Response:
    found = await lists.list_lists(session, org_id=viewer.org_id, after_id=None, limit=200)
    context.setdefault("form", {})
    context.setdefault("errors", [])
    return render(request, "segments/new.html", viewer, status_code=status, lists=found,
                  rows=range(ROWS), fields=FIELDS, ops=OPS, **context)  # fmt: skip


@router.get("/segments")
async def segment_list(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    found = await segments.list_segments(session, org_id=viewer.org_id, after_id=None, limit=500)
    return render(request, "segments/list.html", viewer, segments=found)


@router.get("/segments/new")
async def builder(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    return await _builder(request, viewer, session)


@router.post("/segments/count")
async def live_count(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    tree = built_filter(await request.form())
    count, errors = None, []
    if not tree:
        errors = [FieldError("filter", "add a condition")]
    else:
        try:
            count = await segments.count_matching(session, org_id=viewer.org_id, raw=tree)
        except InvalidInput as exc:
            errors = exc.errors
    return fragment(request, "segments/_count.html", viewer, count=count, errors=errors,
                    tree=json.dumps(tree, indent=1) if tree else "")  # fmt: skip


@router.post("/segments")
async def save(request: Request, viewer: ManageViewer, session: WriteSessionDep) -> Response:
    form = await request.form()
    tree = built_filter(form)
    data = {"name": _text(form, "name", 1000), "filter": tree,
            "description": _text(form, "description", 5000) or None}  # fmt: skip
    try:
        if not tree:
            raise InvalidInput.field("filter", "add a condition")
        body = validated(SegmentCreate, data)
        item = segment_out(
            await segments.create_segment(session, org_id=viewer.org_id, name=body.name,
                                          description=body.description, filter=body.filter)
        )  # fmt: skip
    except InvalidInput as exc:
        await roll_back_now(request)
        return await _builder(request, viewer, session, status=422, form=form, errors=exc.errors)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.SEGMENT_CREATE,
                       target_id=item.id, changes=diff(None, audited_segment(item)))  # fmt: skip
    return redirect(f"/segments/{item.id}", viewer, flash=f"Segment {item.name!r} saved")


@router.get("/segments/{segment_id}")
async def segment_page(
    request: Request, segment_id: int, viewer: ReadViewer, session: SessionDep
) -> Response:
    item = await segments.get_segment(session, org_id=viewer.org_id, segment_id=segment_id)
    first = await segments.segment_contacts(
        session, org_id=viewer.org_id, segment_id=segment_id, after_id=None, limit=50
    )
    return render(request, "segments/segment.html", viewer, item=item, contacts=first,
                  tree=json.dumps(item.segment.filter, indent=1))  # fmt: skip


@router.post("/segments/{segment_id}/delete")
async def delete(segment_id: int, viewer: ManageViewer, session: WriteSessionDep) -> Response:
    before = audited_segment(
        segment_out(await segments.get_segment(session, org_id=viewer.org_id,
                                               segment_id=segment_id))
    )  # fmt: skip
    await segments.delete_segment(session, org_id=viewer.org_id, segment_id=segment_id)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.SEGMENT_DELETE,
                       target_id=segment_id, changes=diff(before, None))  # fmt: skip
    return redirect("/segments", viewer, flash=f"Segment {segment_id} deleted")


def _edit_page(request: Request, viewer: Viewer, item: SegmentOut, *, status: int = 200,
               errors: list[FieldError] | None = None,
               form: dict[str, str] | None = None) -> Response:  # fmt: skip
    filled = form or {"name": item.name, "description": item.description or "",
                      "filter_json": json.dumps(item.filter, indent=1)}  # fmt: skip
    return render(request, "segments/edit.html", viewer, status_code=status, item=item,
                  form=filled, errors=errors or [])  # fmt: skip


async def _segment(session: Any, viewer: Viewer, segment_id: int) -> SegmentOut:
    return segment_out(
        await segments.get_segment(session, org_id=viewer.org_id, segment_id=segment_id)
    )


@router.get("/segments/{segment_id}/edit")
async def edit_form(
    request: Request, segment_id: Id, viewer: ManageViewer, session: SessionDep
) -> Response:
    return _edit_page(request, viewer, await _segment(session, viewer, segment_id))


@router.post("/segments/{segment_id}/edit")
async def edit(
    request: Request, segment_id: Id, viewer: ManageViewer, session: WriteSessionDep
) -> Response:
    form = await request.form()
    typed = {name: _text(form, name, 100_000) for name in ("name", "description", "filter_json")}
    before = await _segment(session, viewer, segment_id)
    try:
        try:
            tree = json.loads(typed["filter_json"])
        except ValueError as exc:
            raise InvalidInput.field("filter", f"not JSON: {exc}") from None
        data = {"name": typed["name"], "description": typed["description"] or None,
                "filter": tree}  # fmt: skip
        body = validated(SegmentUpdate, data)
        after = segment_out(
            await segments.update_segment(session, org_id=viewer.org_id, segment_id=segment_id,
                                          changes=changes_of(body, SegmentChanges))
        )  # fmt: skip
    except InvalidInput as exc:
        await roll_back_now(request)
        return _edit_page(request, viewer, before, status=422, errors=exc.errors, form=typed)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.SEGMENT_UPDATE,
                       target_id=segment_id,
                       changes=diff(audited_segment(before), audited_segment(after)))  # fmt: skip
    return redirect(f"/segments/{segment_id}", viewer, flash=f"Segment {after.name!r} saved")


@router.get("/segments/{segment_id}/delete")
async def delete_form(
    request: Request, segment_id: Id, viewer: ManageViewer, session: SessionDep
) -> Response:
    item = await _segment(session, viewer, segment_id)
    return render(request, "confirm.html", viewer, what=f"segment {item.name!r}",
                  action=f"/segments/{item.id}/delete", back=f"/segments/{item.id}",
                  refused=None, note="Its contacts stay; broadcasts already made keep "
                  "the audience they expanded.")  # fmt: skip
