"""Tracking end to end: a tracked broadcast through the dispatcher into the sink, then
the recipients' pixel, link and played hits moving the counters once each; bots kept
but not counted; the events listing and the stats."""

from __future__ import annotations

import email
import re
from datetime import timedelta
from email import policy

import httpx
from sqlalchemy import update

from tests.support.factories import make_org, upsert
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.links.secret import load_secret
from tidings.links.tokens import TokenSigner
from tidings.outbox.models import Message
from tidings.settings import Settings

PUBLIC = "http://tidings.test"
BROWSER = {
    "User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15"
}
SCANNER = {"User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel link scanner)"}


async def _age_messages(db: Database) -> None:
    """Sent an hour ago: past the bot rule's 'too soon after sending'."""
    async with db.session() as session:
        await session.execute(update(Message).values(sent_at=utcnow() - timedelta(hours=1)))
        await session.commit()


async def test_opens_clicks_and_plays_count_once_per_recipient_and_bots_not_at_all(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    org = await make_org(db)
    other = await make_org(db, "Other")
    base, h = f"/v1/orgs/{org.id}", org.bearer
    await upsert(client, org, [{"email": "ann@example.com"}, {"email": "bob@example.com"}])
    template = (
        await client.post(
            f"{base}/templates",
            headers=h,
            json={
                "name": "t", "channel": "email", "subject": "s",
                "html": '<html><body><a href="https://acme.example/x">Go</a>'
                        '<a href="{{ play_url }}">Watch</a></body></html>',
            },
        )
    ).json()  # fmt: skip
    campaign = (
        await client.post(
            f"{base}/campaigns",
            headers=h,
            json={
                "name": "c", "channel": "email", "template_id": template["id"],
                "from_email": "a@acme.example", "track_opens": True, "track_clicks": True,
            },
        )
    ).json()  # fmt: skip
    broadcast = (
        await client.post(
            f"{base}/broadcasts",
            headers=h,
            json={"name": "b", "campaign_id": campaign["id"], "send_to_all": True},
        )
    ).json()
    signer = TokenSigner(load_secret(settings))
    await Dispatcher(
        db, renderer=Renderer(), signer=signer, config=DispatcherConfig(public_url=PUBLIC)
    ).drain()

    sunk = (await client.get(f"{base}/sink/messages", headers=h)).json()["data"]
    assert len(sunk) == 2
    hits = []
    for item in sunk:
        parsed = email.message_from_bytes(item["content"].encode(), policy=policy.default)
        body = parsed.get_body(("html",))
        assert body is not None
        html = body.get_content()
        pixel = re.findall(r'<img src="([^"]+)"', html)
        links = re.findall(r'href="([^"]+)"', html)
        assert len(pixel) == 1
        assert pixel[0].startswith(f"{PUBLIC}/o/")
        assert html.index(pixel[0]) < html.index("</body>")
        click, play_link = links  # the play URL is already ours: not wrapped in a redirect
        assert click.startswith(f"{PUBLIC}/l/")
        assert play_link.startswith(f"{PUBLIC}/p/")
        hits.append((pixel[0].removeprefix(PUBLIC), click.removeprefix(PUBLIC),
                     play_link.removeprefix(PUBLIC)))  # fmt: skip

    # A gateway scanning the mail on arrival: flagged (too soon, scanner UA, HEAD).
    first_pixel, first_click, _ = hits[0]
    assert (await client.get(first_pixel, headers=BROWSER)).status_code == 200
    assert (await client.get(first_click, headers=SCANNER)).status_code == 302
    assert (await client.head(hits[1][1], headers=BROWSER)).status_code == 302
    stats = (await client.get(f"{base}/broadcasts/{broadcast['id']}/stats", headers=h)).json()
    assert stats["counters"]["opened"] == stats["counters"]["clicked"] == 0

    await _age_messages(db)
    for pixel, click, play in hits:
        for _ in range(2):  # twice each: counted once per recipient
            opened = await client.get(pixel, headers=BROWSER)
            assert opened.status_code == 200
            assert opened.headers["content-type"] == "image/gif"
            assert "no-store" in opened.headers["cache-control"]
            assert (await client.get(click, headers=BROWSER)).headers["location"] == (
                "https://acme.example/x"
            )
            assert (await client.post(play, headers=BROWSER)).status_code == 204
            assert (await client.get(play, headers=BROWSER)).status_code == 204
    # Apple Mail Privacy Protection's proxy prefetching the pixel: flagged.
    apple = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=client._transport.app, client=("17.58.1.2", 443)),  # type: ignore[attr-defined]
        base_url=PUBLIC,
    )
    async with apple:
        assert (
            await apple.get(hits[1][0], headers={"User-Agent": "Mozilla/5.0"})
        ).status_code == 200

    assert (await client.get("/o/" + signer.sign("click", 1, 0))).status_code == 404
    assert (await client.post("/p/" + signer.sign("open", 1))).status_code == 404

    done = (await client.get(f"{base}/broadcasts/{broadcast['id']}", headers=h)).json()
    assert (done["opened_count"], done["clicked_count"], done["played_count"]) == (2, 2, 2)

    events = (await client.get(f"{base}/events?limit=500", headers=h)).json()["data"]
    bots = sorted(e["data"]["bot"] for e in events if e["bot"])
    assert bots == ["apple_privacy", "head", "too_soon", "user_agent"]
    human = [e for e in events if not e["bot"]]
    assert sorted(e["type"] for e in human) == (
        ["clicked"] * 2 + ["opened"] * 2 + ["played"] * 2 + ["sent"] * 2
    )  # the dispatcher's own outcomes are events too
    only_opens = (await client.get(f"{base}/events?type=opened", headers=h)).json()["data"]
    assert {e["type"] for e in only_opens} == {"opened"}
    assert len(only_opens) == 4
    mid = human[0]["message_id"]
    mine = (await client.get(f"{base}/events?message_id={mid}", headers=h)).json()["data"]
    assert {e["message_id"] for e in mine} == {mid}
    page = (await client.get(f"{base}/events?limit=3", headers=h)).json()
    rest = (
        await client.get(f"{base}/events?limit=500&cursor={page['next_cursor']}", headers=h)
    ).json()
    assert [e["id"] for e in page["data"] + rest["data"]] == [e["id"] for e in events]
    theirs = await client.get(f"/v1/orgs/{other.id}/events", headers=other.bearer)
    assert theirs.json()["data"] == []  # per org only

    stats = (
        await client.get(f"{base}/broadcasts/{broadcast['id']}/stats?interval=minute", headers=h)
    ).json()
    assert stats["counters"] == {
        "recipients": 2, "sent": 2, "failed": 0, "delivered": 0, "bounced": 0,
        "opened": 2, "clicked": 2, "played": 2, "complained": 0, "unsubscribed": 0,
    }  # fmt: skip
    assert stats["rates"]["open"] == stats["rates"]["click"] == 1.0
    assert stats["rates"]["delivery"] == 0.0
    assert stats["rates"]["bounce"] == 0.0
    assert stats["denominators"] == {"sent": 2, "accepted": 2}
    assert stats["interval"] == "minute"
    totals: dict[str, int] = {}
    for point in stats["series"]:
        assert point["at"].endswith(("Z", "+00:00"))
        assert ":00" in point["at"]
        for kind, n in point["counts"].items():
            totals[kind] = totals.get(kind, 0) + n
    # Human events, one of each, and each message's sent (counted once: sent_count is 2).
    assert totals == {"sent": 2, "opened": 2, "clicked": 2, "played": 2}

    by_campaign = (
        await client.get(f"{base}/campaigns/{campaign['id']}/stats?interval=hour", headers=h)
    ).json()
    assert by_campaign["broadcasts"] == 1
    assert by_campaign["counters"] == stats["counters"]
    assert sum(p["counts"].get("opened", 0) for p in by_campaign["series"]) == 2
    bad = await client.get(f"{base}/campaigns/{campaign['id']}/stats?interval=day", headers=h)
    assert bad.status_code == 422
