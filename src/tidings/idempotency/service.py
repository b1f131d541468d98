"""`Idempotency-Key` on POSTs that create or send.

    same key, same body      → the first answer again (status and body)
    same key, different body → 422
    same key, still running  → 409

The entry point runs `begin` in a short write transaction of its own, committed before
the work's, so that concurrent requests see the claim while the work runs. The work calls
`finish` in its transaction, so the answer is stored exactly when the work commits. A key
left unfinished therefore means the work never committed (a crash): after
IN_FLIGHT_GRACE a retry takes the key over and runs the operation — safely, once. When
the work fails, the entry point rolls its transaction back and, in another one, stores
the error answer (`finish_alone`) or forgets the key (`release`). No function here
commits. Keys are kept KEEP_FOR, then forgotten.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.base import utcnow
from tidings.errors import Conflict, InvalidInput
from tidings.idempotency.models import IdempotencyKey

IN_FLIGHT_GRACE = timedelta(seconds=60)
KEEP_FOR = timedelta(hours=24)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True, slots=True)
class Claim:
    """This request owns the key: do the work, then `finish` in the same transaction."""

    id: int


@dataclass(frozen=True, slots=True)
class Replay:
    """The key was used before with this body: answer this again."""

    status_code: int
    body: dict[str, Any]


def request_hash(method: str, path: str, body: bytes) -> str:
    """The request's identity: method, path and the JSON body in canonical form."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("utf-8", "replace")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


async def begin(
    session: AsyncSession, *, org_id: int, key: str, fingerprint: str
) -> Claim | Replay:
    """Claim the key for this request, or say how it was answered before (Replay);
    InvalidInput for another body, Conflict while another request holds it. Run it in a
    write transaction of its own (see the module docstring)."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput.field("Idempotency-Key", f"1 to {MAX_KEY_LENGTH} printable characters")
    now = utcnow()
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP_FOR))
    existing = await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.org_id == org_id, IdempotencyKey.key == key)
    )
    if existing is None:
        row = IdempotencyKey(org_id=org_id, key=key, request_hash=fingerprint, created_at=now)
        session.add(row)
        try:
            await session.flush()
        except IntegrityError:  # a concurrent request with the same key got there first
            raise Conflict("a request with this Idempotency-Key is in progress") from None
        return Claim(row.id)
    if existing.request_hash != fingerprint:
        raise InvalidInput.field(
            "Idempotency-Key", "already used with a different request body or path"
        )
    if existing.finished_at is not None and existing.status_code is not None:
        return Replay(existing.status_code, existing.response or {})
    if existing.created_at > now - IN_FLIGHT_GRACE:
        raise Conflict("a request with this Idempotency-Key is in progress")
    # Unfinished long ago: the work never committed (see the module docstring). Take over.
    existing.created_at = now
    await session.flush()
    return Claim(existing.id)


async def finish(
    session: AsyncSession, *, claim: Claim, status_code: int, body: dict[str, Any]
) -> None:
    """Store the answer, in the work's transaction (query helper)."""
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == claim.id)
        .values(status_code=status_code, response=body, finished_at=utcnow())
    )


async def finish_alone(
    session: AsyncSession, *, claim: Claim, status_code: int, body: dict[str, Any]
) -> None:
    """Store an error answer: the work did not happen, its transaction was rolled back, and
    the caller runs this in a write transaction of its own."""
    await finish(session, claim=claim, status_code=status_code, body=body)


async def release(session: AsyncSession, *, claim: Claim) -> None:
    """Forget the key after an unexpected failure, so that a retry can run (the caller
    runs this in a write transaction of its own, after the work's was rolled back)."""
    await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == claim.id))
