"""A member's role, and the API scopes it stands for: one table, read by the console's
role checks and by anything that needs to know what a member may do.

    viewer  read
    editor  read + send
    admin   read + send + manage
    owner   read + send + manage, and manages the org's members
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
    """Only an owner adds, disables or resets the org's members."""
    return role is Role.OWNER
