"""The audit's diff: fields that differ as {from, to}; secrets compared, never written."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pydantic import BaseModel

from tidings.audit.actions import Action
from tidings.audit.diff import Secret, diff, flat, secrets, view


def test_a_creation_has_only_to_and_a_deletion_only_from() -> None:
    assert diff(None, {"name": "a", "port": 25}) == {"name": {"to": "a"}, "port": {"to": 25}}
    assert diff({"name": "a"}, None) == {"name": {"from": "a"}}


def test_an_update_keeps_the_fields_that_differ_only() -> None:
    before = {"name": "a", "port": 25, "tags": ["x"]}
    after = {"name": "a", "port": 587, "tags": ["x", "y"], "new": None}
    assert diff(before, after) == {
        "port": {"from": 25, "to": 587},
        "tags": {"from": ["x"], "to": ["x", "y"]},
        "new": {"to": None},
    }
    assert diff(before, dict(before)) == {}


def test_nested_documents_become_dotted_fields() -> None:
    assert flat({"settings": {"host": "h", "tls": {"on": True}}, "empty": {}}) == {
        "settings.host": "h",
        "settings.tls.on": True,
        "empty": {},
    }


def test_secrets_say_set_changed_or_removed_and_never_their_value() -> None:
    created = diff(None, secrets("credentials", {"password": "hunter2-secret"}))
    assert created == {"credentials.password": {"secret": "set"}}
    old = secrets("credentials", {"password": "hunter2-secret", "user": "u"})
    new = secrets("credentials", {"password": "other-secret", "user": "u"})
    assert diff(old, new) == {"credentials.password": {"secret": "changed"}}
    assert diff(old, secrets("credentials", {"user": "u"})) == {
        "credentials.password": {"secret": "removed"}
    }
    assert diff({"secret": Secret(None)}, {"secret": Secret("s")}) == {"secret": {"secret": "set"}}
    for changes in (created, diff(old, new)):
        assert "secret-" not in json.dumps(changes)
    assert "hunter2" not in repr(Secret("hunter2-secret"))


def test_view_is_the_json_answer_without_its_noise() -> None:
    class Out(BaseModel):
        id: int
        name: str
        settings: dict[str, object]
        created_at: datetime
        updated_at: datetime
        count: int

    now = datetime(2026, 12, 7, tzinfo=UTC)
    out = Out(id=1, name="n", settings={"port": 25}, created_at=now, updated_at=now, count=3)
    assert view(out, drop=frozenset({"count"})) == {"name": "n", "settings.port": 25}


def test_every_action_names_its_target_kind() -> None:
    assert Action.CONNECTION_UPDATE.target_kind == "connection"
    assert Action.CREDITS_TOP_UP.target_kind == "credits"
    for action in Action:
        kind, dot, verb = action.value.partition(".")
        assert (bool(kind), dot, bool(verb)) == (True, ".", True)
        assert action.target_kind == kind
