"""Typed dependencies: the database session, the caller, and the org scope of a route.

Authentication styles, all resolving to the same key:
- `Authorization: Bearer <key>`
- headers `api-login: <org login>` + `api-key: <key>` (seed 001)
- HTTP Basic, user = org login, password = key (seed 003)

401: no or invalid credentials. 403: a valid key of another org, or without the scope.
Objects of other orgs are never looked up: services filter by the key's org, so they 404.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Annotated, Any, Protocol

from fastapi import Depends, Path, Request
from fastapi.security import APIKeyHeader, HTTPBasic, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.fields import Id
from tidings.api.principal import Principal, Scope
from tidings.content.render import Renderer
from tidings.db.engine import Database, begin_write, transaction
from tidings.errors import Unauthorized
from tidings.settings import Settings


class KeyStore(Protocol):
    """What the API needs of the keys domain, wired by the composition root
    (`tidings.app`: the `tidings.keys.service` module)."""

    async def authenticate(
        self, session: AsyncSession, *, secret: str, login: str | None
    ) -> Principal: ...

    async def record_use(self, session: AsyncSession, *, key_id: int) -> None: ...


def get_keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


KeysDep = Annotated[KeyStore, Depends(get_keys)]


class _DocumentedBearer(HTTPBearer):
    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class _DocumentedBasic(HTTPBasic):
    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class _DocumentedHeader(APIKeyHeader):
    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


# Declared for OpenAPI only (the Authorize button of /docs): they read nothing, so that
# `credentials_from` is the one place credentials are parsed and every failure is our 401.
_bearer = _DocumentedBearer(description="Authorization: Bearer <API key>")
_basic = _DocumentedBasic(description="User: the org login; password: an API key")
_api_key = _DocumentedHeader(name="api-key", description="With the api-login header")
_api_login = _DocumentedHeader(name="api-login", description="The org login")


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


DatabaseDep = Annotated[Database, Depends(get_database)]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_renderer(request: Request) -> Renderer:
    renderer: Renderer = request.app.state.renderer
    return renderer


RendererDep = Annotated[Renderer, Depends(get_renderer)]


_STALE_KEY = "tidings_stale_key"  # request.state: a key whose use is still to be recorded
_FAILED = "tidings_failed"  # request.state: the route answered a failure it caught
_WRITING = "tidings_write_session"  # request.state: the open write transaction's session


async def get_session(
    request: Request, db: DatabaseDep, keys: KeysDep
) -> AsyncIterator[AsyncSession]:
    """The request's session for reading; a key's use not recorded by a write transaction
    (a read route) is recorded in one of its own at the end."""
    async with db.request_session() as session:
        yield session
        key_id = getattr(request.state, _STALE_KEY, None)
        if key_id is not None:
            setattr(request.state, _STALE_KEY, None)
            await session.rollback()
            async with transaction(session):
                await keys.record_use(session, key_id=key_id)


async def get_write_session(
    request: Request, db: DatabaseDep, keys: KeysDep
) -> AsyncIterator[AsyncSession]:
    """The request's one write transaction: committed when the route returns (before the
    answer is sent), rolled back when it raises or answers a failure it caught itself
    (`answered_failure`: the dialects shape their own errors). The key's use is recorded
    in it."""
    async with db.request_session() as session:
        await begin_write(session)
        try:
            key_id = getattr(request.state, _STALE_KEY, None)
            if key_id is not None:
                setattr(request.state, _STALE_KEY, None)
                await keys.record_use(session, key_id=key_id)
            setattr(request.state, _WRITING, session)
            yield session
        except BaseException:
            await session.rollback()
            raise
        finally:
            setattr(request.state, _WRITING, None)
        if getattr(request.state, _FAILED, False):
            await session.rollback()
        else:
            await session.commit()


def answered_failure(request: Request) -> None:
    """The route turned an error into its answer: its write transaction is rolled back."""
    setattr(request.state, _FAILED, True)


async def roll_back_now(request: Request) -> None:
    """Roll the request's write transaction back now rather than when the route's failure
    reaches its dependency, so that another transaction of the request can write meanwhile
    (SQLite has one writer, and this one would wait for itself)."""
    session: AsyncSession | None = getattr(request.state, _WRITING, None)
    answered_failure(request)
    if session is not None:
        await session.rollback()


def committing_session(request: Request) -> AsyncSession | None:
    """The request's write transaction (`WriteSessionDep`) while it is open and bound to
    commit: what is written in it now commits with the route's work, or not at all."""
    if getattr(request.state, _FAILED, False):
        return None
    session: AsyncSession | None = getattr(request.state, _WRITING, None)
    return session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
WriteSessionDep = Annotated[AsyncSession, Depends(get_write_session, scope="function")]
"""For routes that write: declare it after the key, so the key's use is recorded in it."""


async def get_body(request: Request) -> bytes:
    return await request.body()


BodyDep = Annotated[bytes, Depends(get_body)]
"""The whole request body, for routes that read it raw: declared before WriteSessionDep,
it is read before the write transaction opens, so a slow sender holds none."""


def credentials_from(headers: Mapping[str, str]) -> tuple[str, str | None] | None:
    """(secret, login or None) from whichever supported style the request uses."""
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), None
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        login, sep, secret = decoded.partition(":")
        if not sep:
            raise Unauthorized("malformed Basic credentials")
        return secret, login
    if "api-key" in headers:
        if "api-login" not in headers:
            raise Unauthorized("the api-key header goes with an api-login header")
        return headers["api-key"].strip(), headers["api-login"].strip()
    return None


async def get_principal(
    request: Request,
    db: DatabaseDep,
    keys: KeysDep,
    _b: Annotated[Any, Depends(_bearer)],
    _s: Annotated[Any, Depends(_basic)],
    _k: Annotated[Any, Depends(_api_key)],
    _l: Annotated[Any, Depends(_api_login)],
) -> Principal:
    found = credentials_from(request.headers)
    if found is None:
        raise Unauthorized("credentials required: Bearer key, api-login + api-key, or Basic")
    secret, login = found
    async with db.session() as session:
        principal = await keys.authenticate(session, secret=secret, login=login)
    if principal.stale_use:
        setattr(request.state, _STALE_KEY, principal.key_id)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def scoped(scope: Scope) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, checked against the route's `org_id` and `scope`."""

    async def dependency(
        principal: PrincipalDep, org_id: Annotated[Id, Path(description="The org's id")]
    ) -> Principal:
        principal.require(org_id=org_id, scope=scope)
        return principal

    return dependency


ReadKey = Annotated[Principal, Depends(scoped(Scope.READ))]
SendKey = Annotated[Principal, Depends(scoped(Scope.SEND))]
ManageKey = Annotated[Principal, Depends(scoped(Scope.MANAGE))]
