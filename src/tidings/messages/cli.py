"""`tidings messages list|show` and `tidings sink list|show`: the outbox and what the
built-in sink received, read through the services the API reads them with."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.cli_support import (
    JsonOption,
    LimitOption,
    OrgOption,
    org_id,
    out,
    print_json,
    run,
    settings_of,
    when,
)
from tidings.errors import InvalidInput
from tidings.events.schemas import EventOut
from tidings.messages import service
from tidings.messages.schemas import AttemptOut, MessageOut, SinkMessageOut
from tidings.messages.timeline import Timeline, timeline
from tidings.outbox.status import MessageStatus

messages_app = typer.Typer(
    help="Messages of an org (one per recipient and send): list, show a timeline.",
    no_args_is_help=True,
)
sink_app = typer.Typer(
    help="What the built-in sink connection received: list, show as received.",
    no_args_is_help=True,
)

_RELATIVE = re.compile(r"(\d+)([smhd])\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_moment(raw: str, *, now: datetime) -> datetime:
    """`--since`: an ISO 8601 date or date-time (UTC unless it says otherwise), or a
    time ago: `30m`, `2h`, `7d`. InvalidInput naming `--since` otherwise."""
    relative = _RELATIVE.match(raw.strip())
    if relative is not None:
        return now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise InvalidInput.field(
            "--since", "an ISO date or date-time (2026-12-01, 2026-12-01T09:30) or 30m, 2h, 7d"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@messages_app.command("list")
def messages_list(
    ctx: typer.Context,
    org: OrgOption,
    broadcast: Annotated[int | None, typer.Option(min=1, help="Only this broadcast's.")] = None,
    status: Annotated[MessageStatus | None, typer.Option(help="Only in this status.")] = None,
    to: Annotated[
        str | None, typer.Option(help="Only to this email address or phone number.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only made since: 2026-12-01, 2026-12-01T09:30, 2h, 7d.")
    ] = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """List messages, newest first, with their status and reason."""

    async def work(session: AsyncSession) -> list[MessageOut]:
        ident = await org_id(session, org)
        recipient = None
        if to is not None:
            try:
                recipient = await service.recipient_of(session, org_id=ident, raw=to)
            except InvalidInput as exc:
                raise InvalidInput.field("--to", exc.errors[0].reason) from None
        found = await service.list_messages(
            session,
            org_id=ident,
            after_id=None,
            limit=limit,
            broadcast_id=broadcast,
            status=None if status is None else status.value,
            address=recipient,
            since=None if since is None else since_moment(since, now=datetime.now(UTC)),
            newest_first=True,
        )
        return [MessageOut.model_validate(m) for m in found]

    found = run(settings_of(ctx), work)
    if as_json:
        print_json([m.model_dump(mode="json") for m in found])
        return
    table = Table("id", "broadcast", "channel", "to", "status", "attempts", "reason", "made",
                  "sent")  # fmt: skip
    for m in found:
        table.add_row(str(m.id), str(m.broadcast_id or ""), m.channel, m.recipient or "",
                      m.status, str(m.attempts), m.reason or "", when(m.created_at),
                      when(m.sent_at))  # fmt: skip
    out.print(table)


@messages_app.command("show")
def messages_show(
    ctx: typer.Context,
    message_id: Annotated[int, typer.Argument(min=1, help="The message's id.")],
    org: OrgOption,
    as_json: JsonOption = False,
) -> None:
    """Show one message and its timeline: queued, attempts with their reason, sent or
    failed, then delivered, opened, clicked… as its events tell."""

    async def work(session: AsyncSession) -> Timeline:
        return await timeline(session, org_id=await org_id(session, org), message_id=message_id)

    found = run(settings_of(ctx), work)
    message = MessageOut.model_validate(found.message)
    if as_json:
        print_json(
            {
                "message": message.model_dump(mode="json"),
                "attempt_history": [
                    AttemptOut.model_validate(a).model_dump(mode="json") for a in found.attempts
                ],
                "timeline": [
                    {"at": step.at, "what": step.what, "detail": step.detail}
                    for step in found.steps
                ],
                "events": [
                    EventOut.model_validate(e).model_dump(mode="json") for e in found.events
                ],
            }
        )
        return
    out.print(
        f"message {message.id} ({message.channel}) to {message.recipient or '(erased)'}: "
        f"[bold]{message.status}[/bold]"
        + (f", broadcast {message.broadcast_id}" if message.broadcast_id else "")
        + (f", {message.reason}" if message.reason else ""),
        highlight=False,
    )
    table = Table("when", "what", "detail")
    for step in found.steps:
        table.add_row(when(step.at) or "next", step.what, step.detail or "")
    out.print(table)


@sink_app.command("list")
def sink_list(
    ctx: typer.Context,
    org: OrgOption,
    message: Annotated[int | None, typer.Option(min=1, help="Only this message's copy.")] = None,
    limit: LimitOption = 50,
    as_json: JsonOption = False,
) -> None:
    """List what the sink received, newest first (GET /v1/orgs/{org}/sink/messages)."""

    async def work(session: AsyncSession) -> list[SinkMessageOut]:
        found = await service.list_sink_messages(
            session, org_id=await org_id(session, org), after_id=None, limit=limit,
            message_id=message, newest_first=True,
        )  # fmt: skip
        return [SinkMessageOut.model_validate(m) for m in found]

    found = run(settings_of(ctx), work)
    if as_json:
        print_json([m.model_dump(mode="json") for m in found])
        return
    table = Table("id", "message", "channel", "to", "subject / text", "received")
    for m in found:
        summary = m.subject if m.channel == "email" else m.content
        table.add_row(str(m.id), str(m.message_id or ""), m.channel, m.recipient or "",
                      _line(summary), when(m.created_at))  # fmt: skip
    out.print(table)


def _line(text: str | None, width: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@sink_app.command("show")
def sink_show(
    ctx: typer.Context,
    sink_id: Annotated[int, typer.Argument(min=1, help="Its id in the sink (sink list).")],
    org: OrgOption,
    as_json: JsonOption = False,
) -> None:
    """Print one message as the sink received it: an email's headers and body (its MIME,
    as a mail server would have it), an SMS's text."""

    async def work(session: AsyncSession) -> SinkMessageOut:
        found = await service.get_sink_message(
            session, org_id=await org_id(session, org), sink_id=sink_id
        )
        return SinkMessageOut.model_validate(found)

    found = run(settings_of(ctx), work)
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    _write(found)


def _write(m: SinkMessageOut) -> None:
    content = m.content or ""
    if m.channel == "sms":
        head: dict[str, Any] = {"To": m.recipient, "Segments": m.segments}
        content = "".join(f"{k}: {v}\n" for k, v in head.items()) + "\n" + content
    sys.stdout.write(content if content.endswith("\n") else content + "\n")
