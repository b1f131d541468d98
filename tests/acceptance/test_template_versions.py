"""Template versions over HTTP: every change of content is a new immutable version, which
can be listed, read and restored; a rename is not a change of content."""

from __future__ import annotations

import httpx

from tests.support.factories import make_org
from tidings.db.engine import Database


async def test_versions_are_made_listed_read_and_restored(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}/templates", org.bearer
    made = await client.post(
        base,
        json={"name": "t", "channel": "email", "subject": "One {{ n }}", "text": "first"},
        headers=h,
    )
    assert made.status_code == 201, made.text
    template = made.json()
    assert template["version"] == 1
    url = f"{base}/{template['id']}"

    changed = await client.patch(url, json={"subject": "Two {{ n }}"}, headers=h)
    assert changed.json()["version"] == 2
    renamed = await client.patch(url, json={"name": "renamed"}, headers=h)
    assert (renamed.json()["name"], renamed.json()["version"]) == ("renamed", 2)
    same = await client.patch(url, json={"subject": "Two {{ n }}"}, headers=h)
    assert same.json()["version"] == 2  # the same content is no new version

    page = (await client.get(f"{url}/versions", headers=h)).json()
    assert [(v["number"], v["subject"]) for v in page["data"]] == [
        (1, "One {{ n }}"),
        (2, "Two {{ n }}"),
    ]
    assert page["data"][1]["created_by"].startswith("key ")
    first_page = (await client.get(f"{url}/versions?limit=1", headers=h)).json()
    assert [v["number"] for v in first_page["data"]] == [1]
    rest = await client.get(f"{url}/versions?limit=1&cursor={first_page['next_cursor']}", headers=h)
    assert [v["number"] for v in rest.json()["data"]] == [2]

    one = (await client.get(f"{url}/versions/1", headers=h)).json()
    assert (one["template_id"], one["subject"], one["text"]) == (
        template["id"],
        "One {{ n }}",
        "first",
    )

    restored = await client.post(f"{url}/versions/1/restore", headers=h)
    assert restored.status_code == 200, restored.text
    assert (restored.json()["version"], restored.json()["subject"]) == (3, "One {{ n }}")
    three = (await client.get(f"{url}/versions/3", headers=h)).json()
    assert three["subject"] == "One {{ n }}"
    assert (await client.get(url, headers=h)).json()["subject"] == "One {{ n }}"


async def test_a_change_must_still_fit_the_channel_and_compile(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}/templates", org.bearer
    made = await client.post(
        base, json={"name": "t", "channel": "email", "subject": "s", "text": "x"}, headers=h
    )
    url = f"{base}/{made.json()['id']}"
    emptied = await client.patch(url, json={"text": None}, headers=h)
    assert emptied.status_code == 422
    assert emptied.json()["errors"][0]["field"] == "html"
    broken = await client.patch(url, json={"subject": "{{ oops"}, headers=h)
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "subject"
    versions = (await client.get(f"{url}/versions", headers=h)).json()["data"]
    assert [v["number"] for v in versions] == [1]  # nothing refused became a version


async def test_unknown_versions_and_other_orgs_are_404(
    client: httpx.AsyncClient, db: Database
) -> None:
    a, b = await make_org(db, "Alpha"), await make_org(db, "Bravo")
    made = await client.post(
        f"/v1/orgs/{a.id}/templates",
        json={"name": "t", "channel": "sms", "text": "hi"},
        headers=a.bearer,
    )
    tid = made.json()["id"]
    a_url, b_url = f"/v1/orgs/{a.id}/templates/{tid}", f"/v1/orgs/{b.id}/templates/{tid}"
    assert (await client.get(f"{a_url}/versions/2", headers=a.bearer)).status_code == 404
    assert (await client.post(f"{a_url}/versions/9/restore", headers=a.bearer)).status_code == 404
    assert (
        await client.get(f"/v1/orgs/{a.id}/templates/999/versions", headers=a.bearer)
    ).status_code == 404
    for method, path in (
        ("GET", f"{b_url}/versions"),
        ("GET", f"{b_url}/versions/1"),
        ("POST", f"{b_url}/versions/1/restore"),
        ("DELETE", b_url),
    ):
        response = await client.request(method, path, headers=b.bearer)
        assert response.status_code == 404, (method, path, response.text)
        assert "hi" not in response.text
    assert (await client.get(f"{a_url}/versions", headers=a.bearer)).json()["data"][0][
        "text"
    ] == "hi"
