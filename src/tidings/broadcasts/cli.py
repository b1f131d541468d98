"""`tidings broadcasts list|show|watch`: an org's broadcasts at a terminal.

Each reads the broadcast as `GET /v1/orgs/{org}/broadcasts/{id}` does (`service.get_broadcast`,
shown with `broadcast_out`): the counters the dispatcher and the events move. `watch` reads
them again every second, in a short read transaction each time, until the status is final.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts import service
from tidings.broadcasts.schemas import BroadcastOut, broadcast_out
from tidings.broadcasts.status import FINAL, BroadcastStatus
from tidings.cli_support import (
    JsonOption,
    LimitOption,
    OrgOption,
    err,
    org_id,
    out,
    print_json,
    run,
    run_db,
    settings_of,
    when,
)
from tidings.db.engine import Database

app = typer.Typer(help="Broadcasts of an org: list, show, watch a send.", no_args_is_help=True)

BroadcastArgument = Annotated[int, typer.Argument(help="The broadcast's id.", min=1)]
EXIT_NOT_SENT = 3
"""`watch`'s exit code when the send ended FAILED or CANCELLED."""


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a send stands: `done` of `total` recipients have an outcome (sent or
    failed); `total` is 0 until the broadcast has started (its audience is expanded then)."""

    done: int
    total: int

    @classmethod
    def of(cls, b: BroadcastOut) -> Standing:
        # A bounce counts in both sent and failed: capped, so it never passes the total.
        return cls(min(b.sent_count + b.failed_count, b.recipients_count), b.recipients_count)


class Pace:
    """The rate of outcomes over the last `window` seconds, and the time left at that rate,
    from the samples `watch` takes (times in seconds, any origin)."""

    def __init__(self, window: float = 10.0) -> None:
        self.window = window
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at: float, done: int) -> None:
        self._samples.append((at, done))
        while len(self._samples) > 2 and at - self._samples[1][0] >= self.window:
            self._samples.popleft()

    @property
    def rate(self) -> float | None:
        """Outcomes per second, None until two samples span some time."""
        if len(self._samples) < 2:
            return None
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def eta(self, progress: Standing) -> float | None:
        """Seconds left at the current rate; None when unknown (no rate, nothing started)."""
        rate = self.rate
        if not rate or progress.total == 0:
            return None
        return max(progress.total - progress.done, 0) / rate


def _document(b: BroadcastOut, progress: Standing, pace: Pace) -> dict[str, Any]:
    """One JSON Lines document of `watch`: the broadcast as the API shows it, and where
    its send stands."""
    eta = pace.eta(progress)
    rate = pace.rate
    return b.model_dump(mode="json") | {
        "progress": {
            "done": progress.done,
            "total": progress.total,
            "rate": None if rate is None else round(rate, 1),
            "eta_seconds": None if eta is None else round(eta),
        }
    }


def _row(b: BroadcastOut) -> list[str]:
    p = Standing.of(b)
    share = f"{p.done}/{p.total}" + (f" {100 * p.done // p.total}%" if p.total else "")
    return [str(b.id), b.name, b.status, share, str(b.sent_count), str(b.failed_count),
            str(b.skipped_count), str(b.opened_count), str(b.clicked_count),
            when(b.scheduled_at or b.created_at)]  # fmt: skip


@app.command("list")
def list_(
    ctx: typer.Context, org: OrgOption, limit: LimitOption = 20, as_json: JsonOption = False
) -> None:
    """List an org's broadcasts, newest first: status, progress and counters."""

    async def work(session: AsyncSession) -> list[BroadcastOut]:
        found = await service.list_broadcasts(
            session, org_id=await org_id(session, org), after_id=None, limit=limit,
            newest_first=True,
        )  # fmt: skip
        return [broadcast_out(b) for b in found]

    found = run(settings_of(ctx), work)
    if as_json:
        print_json([b.model_dump(mode="json") for b in found])
        return
    table = Table("id", "name", "status", "done", "sent", "failed", "skipped", "opened",
                  "clicked", "scheduled")  # fmt: skip
    for b in found:
        table.add_row(*_row(b))
    out.print(table)


@app.command()
def show(
    ctx: typer.Context, broadcast_id: BroadcastArgument, org: OrgOption, as_json: JsonOption = False
) -> None:
    """Show one broadcast: its status, audience, times and every counter (--json: the
    document GET /v1/orgs/{org}/broadcasts/{id} answers)."""

    async def work(session: AsyncSession) -> BroadcastOut:
        ident = await org_id(session, org)
        return broadcast_out(
            await service.get_broadcast(session, org_id=ident, broadcast_id=broadcast_id)
        )

    b = run(settings_of(ctx), work)
    if as_json:
        print_json(b.model_dump(mode="json"))
        return
    table = Table("field", "value", show_header=False, box=None)
    for name, value in b.model_dump().items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        elif hasattr(value, "isoformat"):
            value = when(value)
        table.add_row(name, "" if value is None else str(value))
    out.print(table)


class _Rate(ProgressColumn):
    """`12.5 msg/s, 0:00:31 left`, from the task's fields (`watch` sets them)."""

    def render(self, task: Task) -> Text:
        rate, eta = task.fields.get("rate"), task.fields.get("eta")
        text = "" if rate is None else f"{rate:,.1f} msg/s"
        if eta is not None:
            minutes, seconds = divmod(round(eta), 60)
            text += f", {minutes // 60}:{minutes % 60:02}:{seconds:02} left"
        return Text(text)


@app.command()
def watch(
    ctx: typer.Context,
    broadcast_id: BroadcastArgument,
    org: OrgOption,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON Lines: the broadcast with its progress each time it changes; "
            "the last line is the final state.",
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, max=60, help="Seconds between two reads.")
    ] = 1.0,
) -> None:
    """Follow a send until it is final, with a progress bar, its rate and the time left.

    Exit code 0 when the broadcast ends SENT, 3 when it ends FAILED or CANCELLED. A
    draft, scheduled or paused broadcast is watched until it is sent; Ctrl-C stops
    watching (the send goes on).
    """
    settings = settings_of(ctx)
    bar = Progress(
        TextColumn("[bold]{task.fields[status]}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        _Rate(),
        console=err,
        disable=as_json or not err.is_terminal,
    )

    async def work(db: Database) -> BroadcastOut:
        async with db.transaction(write=False) as session:
            ident = await org_id(session, org)
        loop = asyncio.get_running_loop()
        pace = Pace()
        last: dict[str, Any] | None = None
        task = bar.add_task("send", total=None, status="reading")
        with bar:
            while True:
                async with db.transaction(write=False) as session:
                    b = broadcast_out(
                        await service.get_broadcast(
                            session, org_id=ident, broadcast_id=broadcast_id
                        )
                    )
                progress = Standing.of(b)
                pace.add(loop.time(), progress.done)
                document = _document(b, progress, pace)
                bar.update(task, total=progress.total or None, completed=progress.done,
                           status=b.status, rate=pace.rate, eta=pace.eta(progress))  # fmt: skip
                if as_json and (last is None or _changed(last, document)):
                    print_json(document)
                last = document
                if b.status in FINAL:
                    return b
                await asyncio.sleep(interval)

    try:
        final = run_db(settings, work)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    if not as_json:
        out.print(
            f"broadcast {final.id} {final.status}: {final.sent_count} sent, "
            f"{final.failed_count} failed, {final.skipped_count} skipped of "
            f"{final.contacts_count}"
            + (f" ({final.error_message})" if final.error_message else ""),
            highlight=False,
        )
    if final.status != BroadcastStatus.SENT:
        raise typer.Exit(EXIT_NOT_SENT)


def _changed(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """Something a script follows moved: the status, a counter, or the progress (the
    rate and the time left alone do not make a new line)."""
    skip = {"progress", "updated_at"}
    if {k: v for k, v in before.items() if k not in skip} != {
        k: v for k, v in now.items() if k not in skip
    }:
        return True
    return bool(before["progress"]["done"] != now["progress"]["done"])
