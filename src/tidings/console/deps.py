"""Who is looking at a console page, what they may do, and the CSRF guard.

    viewer: ReadViewer      any signed-in member (every role reads)
    viewer: SendViewer      editor, admin, owner
    viewer: ManageViewer    admin, owner
    viewer: OwnerViewer     admin, owner: those who manage the org's members

Without a live session every console route answers a redirect to `/login?next=…`
(`SignInRequired`, rendered by `routing.ConsoleRoute`). A `Viewer` is an audit actor
("member <id>"), so a page records its writes with `audit.record(…, by=viewer, …)` and
calls the same services as the API routes with `org_id=viewer.org_id`.

Every route of a `routing.page_router()` passes `csrf_guard` first: a request that is not
GET or HEAD must carry the session's CSRF token, in the `csrf_token` form field or the
`X-CSRF-Token` header (htmx sends the header: `hx-headers` on base.html's body).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select

from tidings.api.deps import DatabaseDep, SettingsDep
from tidings.api.principal import Scope
from tidings.db.engine import Database
from tidings.errors import Forbidden
from tidings.members import sessions
from tidings.members.roles import SCOPES, Role, manages_members
from tidings.orgs.models import Org
from tidings.settings import Settings

SESSION_COOKIE = "tidings_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
_VIEWER = "tidings_viewer"  # request.state: the viewer, once resolved


class SignInRequired(Exception):
    """No live session: the console answers with the sign-in page (`routing.py`)."""


def csrf_refused() -> Forbidden:
    return Forbidden(
        "this form has expired or did not come from the console: reload the page and try again"
    )


@dataclass(frozen=True, slots=True)
class OrgChoice:
    id: int
    login: str
    name: str


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in member and the org the console shows them."""

    member_id: int
    email: str
    role: Role
    is_operator: bool
    org_id: int
    org_login: str
    org_name: str
    session_id: int
    csrf_token: str
    orgs: tuple[OrgChoice, ...] = ()  # an operator's choice of orgs; empty otherwise
    key_id: None = None  # an audit actor without an API key

    @property
    def who(self) -> str:
        """How the audit log and versioned objects name this actor: `member <id>`."""
        return f"member {self.member_id}"

    @property
    def scopes(self) -> frozenset[Scope]:
        return SCOPES[self.role]

    @property
    def manages_members(self) -> bool:
        return manages_members(self.role)

    def can(self, scope: Scope) -> bool:
        return scope in self.scopes

    def require(self, scope: Scope) -> None:
        if not self.can(scope):
            raise Forbidden(f"your role ({self.role}) cannot do this: it needs `{scope}`")


def lifetimes(settings: Settings) -> sessions.Lifetimes:
    return sessions.Lifetimes(
        lifetime=timedelta(hours=settings.console_session_hours),
        idle=timedelta(minutes=settings.console_idle_minutes),
    )


async def _operator_orgs(db: Database) -> tuple[OrgChoice, ...]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(select(Org.id, Org.login, Org.name).order_by(Org.id))
        return tuple(OrgChoice(id=i, login=login, name=name) for i, login, name in rows)


async def find_viewer(request: Request, db: DatabaseDep, settings: SettingsDep) -> Viewer | None:
    """The viewer of a live session, or None; its `last_seen_at` kept up to date."""
    cached: Viewer | None = getattr(request.state, _VIEWER, None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    async with db.transaction(write=False) as session:
        found = await sessions.resolve(session, token=token, lifetimes=lifetimes(settings))
    if found is None:
        return None
    if found.stale:
        async with db.transaction() as session:
            await sessions.touch(session, session_id=found.session.id)
    member, org = found.member, found.org
    viewer = Viewer(
        member_id=member.id,
        email=member.email,
        role=Role(member.role),
        is_operator=member.is_operator,
        org_id=org.id,
        org_login=org.login,
        org_name=org.name,
        session_id=found.session.id,
        csrf_token=found.session.csrf_token,
        orgs=await _operator_orgs(db) if member.is_operator else (),
    )
    setattr(request.state, _VIEWER, viewer)
    return viewer


async def get_viewer(viewer: Annotated[Viewer | None, Depends(find_viewer)]) -> Viewer:
    if viewer is None:
        raise SignInRequired
    return viewer


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


def requiring(scope: Scope) -> Callable[..., Coroutine[Any, Any, Viewer]]:
    """A dependency: the viewer, whose role must hold `scope` (403 page otherwise)."""

    async def dependency(viewer: ViewerDep) -> Viewer:
        viewer.require(scope)
        return viewer

    return dependency


async def _owner(viewer: ViewerDep) -> Viewer:
    if not viewer.manages_members:
        raise Forbidden("only an admin or an owner manages the org's members")
    return viewer


ReadViewer = Annotated[Viewer, Depends(requiring(Scope.READ))]
SendViewer = Annotated[Viewer, Depends(requiring(Scope.SEND))]
ManageViewer = Annotated[Viewer, Depends(requiring(Scope.MANAGE))]
OwnerViewer = Annotated[Viewer, Depends(_owner)]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def presented_csrf(request: Request) -> str:
    """The CSRF token a request carries: the header (htmx), else the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    kind = request.headers.get("content-type", "")
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def same_token(presented: str, expected: str) -> bool:
    """Compared in constant time: the comparison's duration tells nothing of the token."""
    return bool(presented) and hmac.compare_digest(presented.encode(), expected.encode())


async def csrf_guard(request: Request, viewer: ViewerDep) -> None:
    """Refuse (403 page) a request that could change something without the session's token."""
    if request.method in SAFE_METHODS:
        return
    if not same_token(await presented_csrf(request), viewer.csrf_token):
        raise csrf_refused()
