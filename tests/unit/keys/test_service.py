from __future__ import annotations

import pytest

from tidings.api.principal import Principal
from tidings.errors import Forbidden
from tidings.keys.schemas import KeyKind, Scope


def principal(*scopes: Scope, org_id: int = 1) -> Principal:
    return Principal(
        key_id=10, org_id=org_id, org_login="acme", kind=KeyKind.LIVE, scopes=frozenset(scopes)
    )


@pytest.mark.parametrize("scope", list(Scope))
def test_require_passes_for_own_org_and_held_scope(scope: Scope) -> None:
    principal(scope).require(org_id=1, scope=scope)


def test_require_passes_for_a_key_with_every_scope() -> None:
    key = principal(*Scope)
    for scope in Scope:
        key.require(org_id=1, scope=scope)


def test_require_refuses_another_org() -> None:
    with pytest.raises(Forbidden, match="another org"):
        principal(*Scope, org_id=1).require(org_id=2, scope=Scope.READ)


@pytest.mark.parametrize(
    ("held", "needed"),
    [
        ((Scope.READ,), Scope.MANAGE),
        ((Scope.READ, Scope.SEND), Scope.MANAGE),
        ((Scope.MANAGE,), Scope.SEND),
        ((), Scope.READ),
    ],
    ids=["read-needs-manage", "read-send-needs-manage", "manage-needs-send", "none-needs-read"],
)
def test_require_refuses_a_missing_scope(held: tuple[Scope, ...], needed: Scope) -> None:
    with pytest.raises(Forbidden, match=f"`{needed}` scope"):
        principal(*held).require(org_id=1, scope=needed)


def test_require_checks_the_org_before_the_scope() -> None:
    with pytest.raises(Forbidden, match="another org"):
        principal(Scope.READ).require(org_id=2, scope=Scope.MANAGE)
