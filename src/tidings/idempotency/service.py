"""`Idempotency-Key` on POSTs that create or send: the key store.

    same key, same request   → the first answer again (status, body, media type)
    same key, other request  → 422 (KeyReused) on the field `Idempotency-Key`
    same key, still running  → 409

A key is one org's on one route (method and path). The entry point (`idempotency.http`)
runs `begin` in a short write transaction of its own, committed before the work's, so
that concurrent requests see the claim while the work runs; the unique constraint on
(org_id, route, key) lets exactly one of them insert it. The answer is stored by `finish`
in the work's own transaction, so it is stored exactly when the work commits. A key left
unfinished therefore means the work never committed (a crash, a lost connection): once it
is older than the in-flight limit, a retry takes it over and runs the operation. A claim
is `(id, claimed_at)`, and `finish` stores an answer only while the claim is still the
key's: a request so slow that its key was taken over fails (Conflict, its transaction
rolled back) instead of doing the work a second time.

When the work fails, the entry point rolls its transaction back and, in another one,
stores the refusal (`finish` again: a domain error is an answer too) or forgets the key
(`release`: an unexpected failure, so that a retry runs). No function here commits.
Keys are kept `keep_for` (a setting), then deleted by the next `begin` of any org.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.base import utcnow
from tidings.errors import Conflict, InvalidInput, KeyReused
from tidings.idempotency.models import IdempotencyKey

MAX_KEY_LENGTH = 255
CANONICAL_UP_TO = 1 << 20
"""JSON bodies up to this size are compared in canonical form (key order and spacing do
not matter); larger bodies, and bodies that are not JSON, byte for byte."""


@dataclass(frozen=True, slots=True)
class Claim:
    """This request holds the key: do the work, then `finish` in the same transaction."""

    id: int
    claimed_at: datetime


@dataclass(frozen=True, slots=True)
class Replay:
    """The key was used before for this request: answer this again."""

    status_code: int
    body: Any
    media_type: str | None


def route_digest(method: str, path: str) -> str:
    """The route a key is scoped to: its method and path."""
    return hashlib.sha256(f"{method} {path}".encode()).hexdigest()


def request_hash(method: str, path: str, body: bytes, *, caller: int | None = None) -> str:
    """The request's identity: method, path, the body (JSON in canonical form) and the
    API key that sends it (`caller`)."""
    canonical: bytes = body
    if len(body) <= CANONICAL_UP_TO:
        try:
            parsed = json.loads(body or b"null")
        except ValueError:
            pass
        else:
            canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(f"{caller} {method} {path}\n".encode())
    digest.update(canonical)
    return digest.hexdigest()


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput.field("Idempotency-Key", f"1 to {MAX_KEY_LENGTH} printable characters")


async def begin(
    session: AsyncSession,
    *,
    org_id: int,
    route: str,
    key: str,
    fingerprint: str,
    keep_for: timedelta,
    in_flight_for: timedelta,
) -> Claim | Replay:
    """Claim the key for this request, or say how it was answered before (Replay);
    KeyReused for another request, Conflict while another request holds it. Run it in
    a write transaction of its own (see the module docstring). Side effect: deletes the
    keys of every org older than `keep_for`."""
    check_key(key)
    now = utcnow()
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - keep_for))
    existing = await session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.org_id == org_id,
            IdempotencyKey.route == route,
            IdempotencyKey.key == key,
        )
    )
    if existing is None:
        row = IdempotencyKey(
            org_id=org_id, route=route, key=key, request_hash=fingerprint, created_at=now
        )
        session.add(row)
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError:  # a concurrent request with the same key got there first
            raise Conflict("a request with this Idempotency-Key is in progress") from None
        return Claim(row.id, now)
    if existing.request_hash != fingerprint:
        raise KeyReused()
    if existing.finished_at is not None and existing.status_code is not None:
        return Replay(existing.status_code, existing.response, existing.media_type)
    if existing.created_at > now - in_flight_for:
        raise Conflict("a request with this Idempotency-Key is in progress")
    # Unfinished for longer than any request runs: its work never committed (see the
    # module docstring). Take it over, unless another retry or the slow request itself
    # changed it since it was read.
    taken = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == existing.id,
            IdempotencyKey.created_at == existing.created_at,
            IdempotencyKey.finished_at.is_(None),
        )
        .values(created_at=now)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("a request with this Idempotency-Key is in progress")
    return Claim(existing.id, now)


async def finish(
    session: AsyncSession,
    *,
    claim: Claim,
    status_code: int,
    body: Any,
    media_type: str | None,
) -> None:
    """Store the answer (query helper: in the work's transaction, or in one of its own for
    a refusal). Conflict when the key was taken over meanwhile: the caller's transaction
    must not commit (the request that took it over does the work)."""
    stored = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == claim.id,
            IdempotencyKey.created_at == claim.claimed_at,
            IdempotencyKey.finished_at.is_(None),
        )
        .values(status_code=status_code, response=body, media_type=media_type, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if stored.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("this request's Idempotency-Key was taken over by a retry")


async def release(session: AsyncSession, *, claim: Claim) -> None:
    """Forget the key after an unexpected failure, so that a retry can run (the caller
    runs this in a write transaction of its own, after the work's was rolled back)."""
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.id == claim.id,
            IdempotencyKey.created_at == claim.claimed_at,
            IdempotencyKey.finished_at.is_(None),
        )
    )
