"""A member's role, and the API scopes it stands for: one table, read by the console's
role checks and by anything that needs to know what a member may do.

    viewer  read
    editor  read + send
    admin   read + send + manage, and manages the org's members but its owners
    owner   read + send + manage, and manages the org's members, owners too
"""

from __future__ import annotations

from enum import StrEnum

from tidings.api.principal import Scope


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"


SCOPES: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.READ}),
    Role.EDITOR: frozenset({Scope.READ, Scope.SEND}),
    Role.ADMIN: frozenset({Scope.READ, Scope.SEND, Scope.MANAGE}),
    Role.OWNER: frozenset({Scope.READ, Scope.SEND, Scope.MANAGE}),
}


def manages_members(role: Role) -> bool:
    """Admins and owners add, change and remove the org's members (`may_manage`)."""
    return role in (Role.OWNER, Role.ADMIN)


def may_manage(by: Role, role: Role) -> bool:
    """Whether a member of role `by` may give `role`, or change or remove a member who
    has it: an owner any; an admin any but an owner (an admin never makes, unmakes or
    removes an owner)."""
    return manages_members(by) and (by == Role.OWNER or role != Role.OWNER)
