"""API keys: issue, list, revoke, and resolve a presented secret to a `Principal`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.principal import Principal as Principal
from tidings.db.base import utcnow
from tidings.errors import Forbidden, NotFound, Unauthorized
from tidings.keys import secrets
from tidings.keys.models import ApiKey
from tidings.keys.schemas import KeyKind, Scope
from tidings.orgs.models import Org
from tidings.orgs.service import add_org

LAST_USED_RESOLUTION = timedelta(minutes=1)
"""`last_used_at` is written at most this often per key, so requests do not all write."""


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: ApiKey
    secret: str


def parse_scopes(stored: str) -> list[Scope]:
    return [Scope(s) for s in stored.split()]


def add_key(
    session: AsyncSession, *, org_id: int, name: str, kind: KeyKind, scopes: Iterable[Scope]
) -> IssuedKey:
    secret = secrets.generate(kind)
    key = ApiKey(
        org_id=org_id,
        name=name,
        kind=kind,
        scopes=" ".join(sorted(set(scopes))),
        prefix=secrets.display_prefix(secret),
        secret_hash=secrets.digest(secret),
    )
    session.add(key)
    return IssuedKey(key=key, secret=secret)


@dataclass(frozen=True, slots=True)
class NewOrg:
    org: Org
    key: IssuedKey


async def create_org(
    session: AsyncSession, *, name: str, login: str | None = None, phone_region: str | None = None
) -> NewOrg:
    """Create an org and its first key (live, every scope). The key's secret is shown once."""
    org = await add_org(session, name=name, login=login, phone_region=phone_region)
    key = add_key(session, org_id=org.id, name="first key", kind=KeyKind.LIVE, scopes=Scope)
    await session.flush()
    return NewOrg(org=org, key=key)


async def create_key(
    session: AsyncSession,
    *,
    org_id: int,
    name: str,
    kind: KeyKind = KeyKind.LIVE,
    scopes: Sequence[Scope] = tuple(Scope),
    issuer: Principal | None = None,
) -> IssuedKey:
    """Issue a key. An `issuer` (a key creating a key) can grant no more than it holds."""
    if issuer is not None:
        if not set(scopes) <= issuer.scopes:
            raise Forbidden("a key cannot grant scopes it does not hold")
        if issuer.kind is KeyKind.TEST and kind is KeyKind.LIVE:
            raise Forbidden("a test key cannot create live keys")
    if await session.get(Org, org_id) is None:
        raise NotFound("org", org_id)
    issued = add_key(session, org_id=org_id, name=name, kind=kind, scopes=scopes)
    await session.flush()
    return issued


async def list_keys(session: AsyncSession, *, org_id: int) -> list[ApiKey]:
    rows = await session.scalars(select(ApiKey).where(ApiKey.org_id == org_id).order_by(ApiKey.id))
    return list(rows)


async def revoke_key(session: AsyncSession, *, org_id: int, key_id: int) -> ApiKey:
    """Revoke a key (idempotent: revoking twice keeps the first time)."""
    key = await session.scalar(select(ApiKey).where(ApiKey.org_id == org_id, ApiKey.id == key_id))
    if key is None:
        raise NotFound("API key", key_id)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await session.flush()
    return key


async def authenticate(session: AsyncSession, *, secret: str, login: str | None) -> Principal:
    """Resolve a presented secret (and, for login + key styles, the org login) to a Principal.

    Raises Unauthorized for anything that is not a live, unrevoked key of that login's org,
    without saying which part was wrong. Read only: a principal whose `last_used_at` is
    older than `LAST_USED_RESOLUTION` says so (`stale_use`), and the caller records the
    use with `record_use` in its write transaction.
    """
    if not secrets.looks_like_key(secret):
        raise Unauthorized("invalid credentials")
    row = (
        await session.execute(
            select(
                ApiKey.id,
                ApiKey.org_id,
                ApiKey.kind,
                ApiKey.scopes,
                ApiKey.revoked_at,
                ApiKey.last_used_at,
                Org.login,
            )
            .join(Org, Org.id == ApiKey.org_id)
            .where(ApiKey.secret_hash == secrets.digest(secret))
        )
    ).first()
    if row is None or row.revoked_at is not None or login not in (None, row.login):
        raise Unauthorized("invalid credentials")
    last = row.last_used_at
    return Principal(
        key_id=row.id,
        org_id=row.org_id,
        org_login=row.login,
        kind=KeyKind(row.kind),
        scopes=frozenset(parse_scopes(row.scopes)),
        stale_use=last is None or utcnow() - last >= LAST_USED_RESOLUTION,
    )


async def record_use(session: AsyncSession, *, key_id: int) -> None:
    """Side effect: the key's `last_used_at` is now (in the caller's write transaction)."""
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=utcnow()))
