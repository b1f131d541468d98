"""Seed 002 (broadcasts) under /compat/invent: the document's request and its full
broadcast object, field by field; drafts and their template; the list; errors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.factories import OrgWithKey, make_org, upsert
from tidings.compat.invent import status_of
from tidings.db.engine import Database

Drain = Callable[[], Awaitable[None]]

DATETIME, NULLABLE_DATETIME, STRING, NULLABLE_STRING = "dt", "dt?", "str", "str?"
COUNTERS = (
    *("contacts_count", "recipients_count", "skipped_count", "sent_count", "failed_count"),
    *("delivered_count", "opened_count", "played_count", "click_count", "complained_count"),
    "unsubscribed_count",
)
STATUSES = {"DRAFT", "SCHEDULED", "SENDING", "SENT", "CANCELLED", "FAILED"}
# The seed's "Schema for a broadcast": every field required, with its type and nullability.
BROADCAST: dict[str, Any] = {
    "id": STRING,
    "name": STRING,
    "status": STATUSES,
    "scheduled_at": NULLABLE_DATETIME,
    "started_at": NULLABLE_DATETIME,
    "completed_at": NULLABLE_DATETIME,
    **dict.fromkeys(COUNTERS, int),
    "error_message": NULLABLE_STRING,
    "segments": [
        {
            "id": STRING,
            "name": STRING,
            "contacts_count": int,
            "created_at": DATETIME,
            "updated_at": DATETIME,
        }
    ],
    "send_to_all": bool,
    "templates": [
        {
            "id": STRING,
            "broadcast_id": STRING,
            "connection_id": NULLABLE_STRING,
            "integration_id": {"internal"},
            "recipients_count": int,
            "config": dict,
            "error": NULLABLE_STRING,
            "created_at": DATETIME,
            "updated_at": DATETIME,
        }
    ],
    "created_at": DATETIME,
    "updated_at": DATETIME,
}


def check(value: Any, schema: Any, where: str = "broadcast") -> None:
    """`value` has exactly the schema's fields, each of its type and nullability."""
    if isinstance(schema, dict):
        assert isinstance(value, dict), where
        assert set(value) == set(schema), f"{where}: {set(value) ^ set(schema)}"
        for name, field in schema.items():
            check(value[name], field, f"{where}.{name}")
    elif isinstance(schema, list):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            check(item, schema[0], f"{where}[{i}]")
    elif isinstance(schema, set):
        assert value in schema, f"{where}: {value!r}"
    elif schema in (DATETIME, NULLABLE_DATETIME, STRING, NULLABLE_STRING):
        if value is None:
            assert schema.endswith("?"), f"{where} is null"
        elif schema.startswith("dt"):
            assert datetime.fromisoformat(value).tzinfo is not None, f"{where}: {value!r}"
        else:
            assert isinstance(value, str), f"{where}: {value!r}"
    elif schema is int:
        assert isinstance(value, int), f"{where}: {value!r}"
        assert not isinstance(value, bool), f"{where}: {value!r}"
    else:
        assert isinstance(value, schema), f"{where}: {value!r}"


async def _setup(client: httpx.AsyncClient, org: OrgWithKey) -> tuple[str, str]:
    """Four contacts, a segment of three, an email campaign: (segment id, campaign id)."""
    base, h = f"/v1/orgs/{org.id}", org.bearer
    panel = (await client.post(f"{base}/lists", headers=h, json={"name": "panel"})).json()
    await upsert(
        client,
        org,
        [{"email": f"p{i}@example.com", "first_name": f"P{i}"} for i in range(3)],
        list_ids=[panel["id"]],
    )
    await upsert(client, org, [{"email": "outsider@example.com"}])
    segment = await client.post(
        f"{base}/segments",
        headers=h,
        json={"name": "panel members", "filter": {"in_list": panel["id"]}},
    )
    assert segment.status_code == 201, segment.text
    template = await client.post(
        f"{base}/templates",
        headers=h,
        json={"name": "t", "channel": "email", "subject": "Hi", "text": "Hi {{ first_name }}"},
    )
    campaign = await client.post(
        f"{base}/campaigns",
        headers=h,
        json={
            "name": "spring",
            "channel": "email",
            "template_id": template.json()["id"],
            "from_email": "news@acme.example",
        },
    )
    assert campaign.status_code == 201, campaign.text
    return str(segment.json()["id"]), str(campaign.json()["id"])


def _path(org: OrgWithKey, tail: str = "") -> str:
    return f"/compat/invent/orgs/{org.id}/broadcasts{tail}"


async def test_the_documented_request_answers_the_full_broadcast_object(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    segment_id, _ = await _setup(client, org)
    later = datetime(2031, 11, 7, 5, 31, 56, tzinfo=UTC)
    response = await client.post(
        _path(org),
        headers=org.bearer,
        json={
            "name": "Spring offer",
            "scheduled_at": "2031-11-07T05:31:56Z",
            "segment_ids": [segment_id],
            "send_to_all": False,
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    check(body, BROADCAST)
    assert body["status"] == "DRAFT"  # no template attached yet
    assert datetime.fromisoformat(body["scheduled_at"]) == later
    assert body["templates"] == []
    [segment] = body["segments"]
    assert (segment["id"], segment["name"], segment["contacts_count"]) == (
        segment_id,
        "panel members",
        3,
    )
    got = await client.get(_path(org, f"/{body['id']}"), headers=org.bearer)
    assert got.status_code == 200
    assert got.json() == body


async def test_a_draft_with_its_template_attached_is_sent(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    segment_id, campaign_id = await _setup(client, org)
    draft = await client.post(
        _path(org), headers=org.bearer, json={"name": "d", "segment_ids": [int(segment_id)]}
    )
    assert draft.status_code == 200, draft.text
    broadcast_id = draft.json()["id"]
    native = await client.post(
        f"/v1/orgs/{org.id}/broadcasts/{broadcast_id}/send", headers=org.bearer
    )
    assert native.status_code == 409  # the native send refuses a draft without a campaign
    await drain()  # a draft is never started
    assert (await client.get(_path(org, f"/{broadcast_id}"), headers=org.bearer)).json()[
        "status"
    ] == "DRAFT"

    attached = await client.put(
        _path(org, f"/{broadcast_id}/templates"),
        headers=org.bearer,
        json={"templates": [{"campaign_id": campaign_id}]},
    )
    assert attached.status_code == 200, attached.text
    body = attached.json()
    check(body, BROADCAST)
    assert body["status"] == "SCHEDULED"
    assert datetime.fromisoformat(body["scheduled_at"]) <= datetime.now(UTC)
    [template] = body["templates"]
    assert (template["id"], template["broadcast_id"], template["connection_id"]) == (
        campaign_id,
        broadcast_id,
        None,  # the built-in sink: the org has no connection of its own
    )
    assert template["config"]["channel"] == "email"
    assert template["config"]["from_email"] == "news@acme.example"

    await drain()
    done = (await client.get(_path(org, f"/{broadcast_id}"), headers=org.bearer)).json()
    check(done, BROADCAST)
    assert done["status"] == "SENT"
    assert [done[c] for c in ("contacts_count", "recipients_count", "sent_count")] == [3, 3, 3]
    assert [done[c] for c in ("skipped_count", "failed_count", "click_count")] == [0, 0, 0]
    assert done["templates"][0]["recipients_count"] == 3
    assert done["started_at"] is not None
    assert done["completed_at"] is not None
    sunk = (await client.get(f"/v1/orgs/{org.id}/sink/messages", headers=org.bearer)).json()
    assert sorted(m["recipient"] for m in sunk["data"]) == [f"p{i}@example.com" for i in range(3)]

    # Attaching it again changes nothing; another campaign is refused.
    again = await client.put(
        _path(org, f"/{broadcast_id}/templates"),
        headers=org.bearer,
        json={"campaign_id": campaign_id},
    )
    assert again.status_code == 200
    assert again.json()["status"] == "SENT"
    other = await client.post(
        f"/v1/orgs/{org.id}/campaigns",
        headers=org.bearer,
        json={
            "name": "other",
            "channel": "email",
            "template_id": int(template["config"]["template_id"]),
            "from_email": "news@acme.example",
        },
    )
    changed = await client.put(
        _path(org, f"/{broadcast_id}/templates"),
        headers=org.bearer,
        json={"campaign_id": str(other.json()["id"])},
    )
    _error_shape(changed, 409)


async def test_send_to_all_with_a_template_at_creation_reaches_everyone(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    _, campaign_id = await _setup(client, org)
    created = await client.post(
        _path(org),
        headers=org.bearer,
        json={
            "name": "all",
            "scheduled_at": None,
            "send_to_all": True,
            "templates": [{"campaign_id": campaign_id}],
        },
    )
    assert created.status_code == 200, created.text
    body = created.json()
    check(body, BROADCAST)
    assert (body["status"], body["send_to_all"], body["segments"]) == ("SCHEDULED", True, [])
    assert body["templates"][0]["id"] == campaign_id
    await drain()
    done = (await client.get(_path(org, f"/{body['id']}"), headers=org.bearer)).json()
    assert (done["status"], done["recipients_count"], done["sent_count"]) == ("SENT", 4, 4)
    assert done["templates"][0]["recipients_count"] == 4


async def test_a_later_time_is_kept_when_the_template_is_attached(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    _, campaign_id = await _setup(client, org)
    later = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    draft = await client.post(
        _path(org),
        headers=org.bearer,
        # No offset: taken as UTC.
        json={
            "name": "later",
            "send_to_all": True,
            "scheduled_at": later.replace(tzinfo=None).isoformat(),
        },
    )
    attached = await client.put(
        _path(org, f"/{draft.json()['id']}/templates"),
        headers=org.bearer,
        json={"campaign_id": int(campaign_id)},
    )
    assert attached.json()["status"] == "SCHEDULED"
    assert datetime.fromisoformat(attached.json()["scheduled_at"]) == later
    await drain()
    got = await client.get(_path(org, f"/{draft.json()['id']}"), headers=org.bearer)
    assert got.json()["status"] == "SCHEDULED"


async def test_the_list_pages_oldest_first_and_shows_only_the_org(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    segment_id, campaign_id = await _setup(client, org)
    ids = []
    for n in range(3):
        created = await client.post(
            _path(org),
            headers=org.bearer,
            json={"name": f"b{n}", "segment_ids": [segment_id], "campaign_id": campaign_id},
        )
        ids.append(created.json()["id"])
    other = await make_org(db, "Other")
    await client.post(
        _path(other), headers=other.bearer, json={"name": "theirs", "send_to_all": True}
    )

    first = await client.get(_path(org, "?limit=2"), headers=org.bearer)
    assert first.status_code == 200, first.text
    page = first.json()
    assert set(page) == {"data", "next_cursor"}
    for item in page["data"]:
        check(item, BROADCAST)
    assert [b["id"] for b in page["data"]] == ids[:2]
    second = await client.get(
        _path(org, f"?limit=2&cursor={page['next_cursor']}"), headers=org.bearer
    )
    assert [b["id"] for b in second.json()["data"]] == ids[2:]
    assert second.json()["next_cursor"] is None


def test_paused_is_scheduled_or_sending_by_whether_it_had_started() -> None:
    assert status_of("PAUSED", started=False) == "SCHEDULED"
    assert status_of("PAUSED", started=True) == "SENDING"
    assert status_of("SENT", started=True) == "SENT"


def _error_shape(response: httpx.Response, status: int, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] in {
        "BAD_REQUEST",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "CONFLICT",
    }
    assert mentions in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"name": "", "send_to_all": True}, "name"),
        ({"name": "x" * 256, "send_to_all": True}, "name"),
        ({"send_to_all": True}, "name"),
        ({"name": "n", "segment_ids": [str(i) for i in range(1, 12)]}, "segment_ids"),
        ({"name": "n", "segment_ids": ["1", "seven"]}, "segment_ids[1]"),
        ({"name": "n", "segment_ids": ["{segment}", "999999"]}, "segment_ids[1]"),
        ({"name": "n"}, "audience"),
        ({"name": "n", "send_to_all": True, "scheduled_at": "soon"}, "scheduled_at"),
        (
            {
                "name": "n",
                "send_to_all": True,
                "templates": [{"campaign_id": "{campaign}"}, {"campaign_id": "{campaign}"}],
            },
            "one template per broadcast",
        ),
        ({"name": "n", "send_to_all": True, "templates": [{}]}, "templates[0].campaign_id"),
        ({"name": "n", "send_to_all": True, "campaign_id": "999999"}, "campaign 999999"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    client: httpx.AsyncClient, db: Database, body: dict[str, Any], mentions: str
) -> None:
    org = await make_org(db)
    segment_id, campaign_id = await _setup(client, org)
    filled = _fill(body, {"{segment}": segment_id, "{campaign}": campaign_id})
    response = await client.post(_path(org), headers=org.bearer, json=filled)
    _error_shape(response, 400, mentions)


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def test_a_name_of_255_characters_is_accepted(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    response = await client.post(
        _path(org), headers=org.bearer, json={"name": "x" * 255, "send_to_all": True}
    )
    assert response.status_code == 200, response.text


async def test_errors_answer_in_the_documented_shape(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    other = await make_org(db, "Other")
    good = {"name": "n", "send_to_all": True}
    mine = (await client.post(_path(org), headers=org.bearer, json=good)).json()["id"]

    _error_shape(await client.post(_path(org), json=good), 401)
    bad_key = {"Authorization": "Bearer tdg_live_nonsense"}
    _error_shape(await client.get(_path(org), headers=bad_key), 401)
    # A key of another org, on this org's path: 403; on its own path, this org's object: 404.
    _error_shape(await client.get(_path(org, f"/{mine}"), headers=other.bearer), 403)
    _error_shape(await client.post(_path(org), headers=other.bearer, json=good), 403)
    _error_shape(await client.get(_path(other, f"/{mine}"), headers=other.bearer), 404)
    attach = {"campaign_id": "1"}
    theirs = _path(other, f"/{mine}/templates")
    _error_shape(await client.put(theirs, headers=other.bearer, json=attach), 404)
    _error_shape(await client.get(_path(org, "/nope"), headers=org.bearer), 404)
    _error_shape(await client.get(_path(org, "/999999"), headers=org.bearer), 404)
    _error_shape(await client.get("/compat/invent/orgs/acme/broadcasts", headers=org.bearer), 403)
    reader = await client.post(
        f"/v1/orgs/{org.id}/keys", headers=org.bearer, json={"name": "r", "scopes": ["read"]}
    )
    read_only = {"Authorization": f"Bearer {reader.json()['api_key']}"}
    _error_shape(await client.post(_path(org), headers=read_only, json=good), 403)
    assert (await client.get(_path(org, f"/{mine}"), headers=read_only)).status_code == 200
    malformed = await client.post(
        _path(org), headers={**org.bearer, "Content-Type": "application/json"}, content=b"{no"
    )
    _error_shape(malformed, 400)
    _error_shape(await client.get(_path(org, "?cursor=zzz"), headers=org.bearer), 400, "cursor")
    empty = await client.put(_path(org, f"/{mine}/templates"), headers=org.bearer, json={})
    _error_shape(empty, 400, "templates")
