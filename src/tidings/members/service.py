"""Members: add, list, change a role, remove, reset a password, and check a sign-in.

Entry points (the console's routes, `tidings users …`) open the transaction; these
functions never commit. An email is compared lower-cased and stripped, as stored.

Who may do what to whom (`roles.may_manage`) is checked here for the console's members
page (`by`: the acting member's role): an admin neither makes, unmakes nor removes an
owner (403). An org keeps at least one owner: the last one can be neither demoted nor
removed (409), which is how a last owner is kept from demoting or removing themselves.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff
from tidings.db.base import utcnow
from tidings.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from tidings.members import passwords, sessions
from tidings.members.models import Member
from tidings.members.roles import Role, may_manage


def normal_email(email: str) -> str:
    cleaned = email.strip().lower()
    local, at, domain = cleaned.partition("@")
    if not at or not local or "." not in domain or len(cleaned) > 320 or " " in cleaned:
        raise InvalidInput.field("email", "not an email address")
    return cleaned


async def add_member(
    session: AsyncSession,
    *,
    org_id: int,
    email: str,
    password: str,
    role: Role,
    is_operator: bool = False,
) -> Member:
    """A new member of `org_id`. 409 when the email already belongs to someone."""
    email = normal_email(email)
    passwords.check_strength(password)
    if await session.scalar(select(Member.id).where(Member.email == email)) is not None:
        raise Conflict(f"a member with the email {email} already exists")
    member = Member(
        org_id=org_id,
        email=email,
        password_hash=await passwords.hash_password(password),
        role=role.value,
        is_operator=is_operator,
    )
    session.add(member)
    await session.flush()
    return member


async def count_members(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Member)) or 0)


_ALPHANUMERIC = string.ascii_letters + string.digits


def generate_password() -> str:
    """A password for a member nobody chose one for (the first owner): 22 letters and
    digits, 130 random bits, nothing a terminal or a shell would trip on."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(22))


async def list_members(session: AsyncSession, *, org_id: int | None) -> Sequence[Member]:
    """The org's members (every org's with None: the CLI), oldest first."""
    query = select(Member).order_by(Member.id)
    if org_id is not None:
        query = query.where(Member.org_id == org_id)
    return list(await session.scalars(query))


async def get_by_email(session: AsyncSession, *, email: str) -> Member:
    member = await session.scalar(select(Member).where(Member.email == normal_email(email)))
    if member is None:
        raise NotFound("member", email)
    return member


async def reset_password(session: AsyncSession, *, member_id: int, password: str) -> int:
    """Set a new password and end every session of the member; how many were ended."""
    passwords.check_strength(password)
    member = await session.get(Member, member_id)
    if member is None:
        raise NotFound("member", member_id)
    member.password_hash = await passwords.hash_password(password)
    return await sessions.revoke_all(session, member_id=member_id)


async def check_sign_in(session: AsyncSession, *, email: str, password: str) -> Member:
    """The member whose email and password these are; 401 for a wrong email, a wrong
    password or a disabled member alike (the answer does not say which, and takes as
    long). Reads only: the password is checked (~50 ms of CPU) outside any write turn."""
    try:
        email = normal_email(email)
    except InvalidInput:
        email = ""
    member = await session.scalar(select(Member).where(Member.email == email)) if email else None
    matches = await passwords.verify(member.password_hash if member else None, password)
    if member is None or not matches or member.disabled_at is not None:
        raise Unauthorized("wrong email or password")
    return member


async def record_sign_in(session: AsyncSession, *, member_id: int) -> None:
    await session.execute(
        update(Member).where(Member.id == member_id).values(last_sign_in_at=utcnow())
    )


def require_may_manage(*, by: Role, role: Role) -> None:
    """Forbidden unless a member of role `by` may give `role` or act on one who has it."""
    if not may_manage(by, role):
        if by is Role.ADMIN:
            raise Forbidden(f"an admin cannot make, change or remove an {role}")
        raise Forbidden(f"your role ({by}) cannot manage members")


async def get_member(session: AsyncSession, *, org_id: int, member_id: int) -> Member:
    """The org's member (NotFound for another org's)."""
    member = await session.scalar(
        select(Member).where(Member.org_id == org_id, Member.id == member_id)
    )
    if member is None:
        raise NotFound("member", member_id)
    return member


async def _keep_an_owner(session: AsyncSession, member: Member, what: str) -> None:
    """Conflict when `member` is the org's last owner (locked on PostgreSQL, so two owners
    demoting each other at once cannot both pass; SQLite's writers take turns)."""
    if member.role != Role.OWNER:
        return
    owners = await session.scalars(
        select(Member.id)
        .where(Member.org_id == member.org_id, Member.role == Role.OWNER.value)
        .with_for_update()
    )
    if len(list(owners)) <= 1:
        raise Conflict(f"{member.email} is the org's last owner: make another owner before "
                       f"{what} them")  # fmt: skip


async def change_role(
    session: AsyncSession, *, org_id: int, member_id: int, role: Role, by: Role
) -> Member:
    """Give the member `role`: Forbidden (403) when `by` may not (an admin, to or from
    owner); Conflict (409) when it would leave the org without an owner."""
    member = await get_member(session, org_id=org_id, member_id=member_id)
    require_may_manage(by=by, role=Role(member.role))
    require_may_manage(by=by, role=role)
    if role != member.role:
        if role != Role.OWNER:
            await _keep_an_owner(session, member, "demoting")
        member.role = role.value
    return member


async def remove_member(session: AsyncSession, *, org_id: int, member_id: int, by: Role) -> Member:
    """Remove the member and end their sessions (the row goes; the audit log keeps
    `member <id>`): Forbidden when `by` may not; Conflict for the org's last owner."""
    member = await get_member(session, org_id=org_id, member_id=member_id)
    require_may_manage(by=by, role=Role(member.role))
    await _keep_an_owner(session, member, "removing")
    await sessions.revoke_all(session, member_id=member.id)
    await session.execute(delete(Member).where(Member.id == member.id))
    return member


async def record_creation(session: AsyncSession, member: Member, by: audit.Actor) -> None:
    """The audit entry of a new member (`tidings users create`, the console's members
    page): who they are and may do, never the password."""
    after = {"email": member.email, "role": member.role, "is_operator": member.is_operator}
    await audit.record(session, org_id=member.org_id, by=by, action=Action.MEMBER_CREATE,
                       target_id=member.id, changes=diff(None, after))  # fmt: skip
