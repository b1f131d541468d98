"""Each role's scopes, and who manages members: the whole table, so a change to it is a
change to this test."""

from __future__ import annotations

from tidings.api.principal import Scope
from tidings.members.roles import SCOPES, Role, manages_members, may_manage


def test_each_role_maps_onto_the_api_scopes() -> None:
    assert {
        Role.VIEWER: {Scope.READ},
        Role.EDITOR: {Scope.READ, Scope.SEND},
        Role.ADMIN: {Scope.READ, Scope.SEND, Scope.MANAGE},
        Role.OWNER: {Scope.READ, Scope.SEND, Scope.MANAGE},
    } == SCOPES


def test_admins_and_owners_manage_members() -> None:
    assert [role for role in Role if manages_members(role)] == [Role.OWNER, Role.ADMIN]


def test_an_admin_manages_every_role_but_owner() -> None:
    assert {by: [role for role in Role if may_manage(by, role)] for by in Role} == {
        Role.OWNER: [Role.OWNER, Role.ADMIN, Role.EDITOR, Role.VIEWER],
        Role.ADMIN: [Role.ADMIN, Role.EDITOR, Role.VIEWER],
        Role.EDITOR: [],
        Role.VIEWER: [],
    }
