"""Each role's scopes, and who manages members: the whole table, so a change to it is a
change to this test."""

from __future__ import annotations

from tidings.api.principal import Scope
from tidings.members.roles import SCOPES, Role, manages_members


def test_each_role_maps_onto_the_api_scopes() -> None:
    assert {
        Role.VIEWER: {Scope.READ},
        Role.EDITOR: {Scope.READ, Scope.SEND},
        Role.ADMIN: {Scope.READ, Scope.SEND, Scope.MANAGE},
        Role.OWNER: {Scope.READ, Scope.SEND, Scope.MANAGE},
    } == SCOPES


def test_only_an_owner_manages_members() -> None:
    assert [role for role in Role if manages_members(role)] == [Role.OWNER]
