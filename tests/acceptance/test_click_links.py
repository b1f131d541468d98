"""Click links: rewritten per recipient, redirected from server-side storage only."""

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


async def test_links_redirect_to_the_original_and_count_a_recipient_once(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    await upsert(client, org, [{"email": "ann@example.com", "attributes": {"code": "A&B"}}])
    template = (
        await client.post(
            f"{base}/templates",
            headers=h,
            json={
                "name": "t",
                "channel": "email",
                "subject": "s",
                "html": (
                    '<a href="https://survey.example/s?c={{ code | urlencode }}&amp;x=1">Go</a> '
                    '<a href="https://acme.example/">Home</a>'
                ),
                "text": "Go to https://survey.example/s?c={{ code | urlencode }}&x=1. Bye",
            },
        )
    ).json()
    campaign = (
        await client.post(
            f"{base}/campaigns",
            headers=h,
            json={
                "name": "c",
                "channel": "email",
                "template_id": template["id"],
                "from_email": "a@acme.example",
                "track_clicks": True,
            },
        )
    ).json()
    broadcast = (
        await client.post(
            f"{base}/broadcasts",
            headers=h,
            json={
                "name": "b",
                "campaign_id": campaign["id"],
                "send_to_all": True,
            },
        )
    ).json()
    signer = TokenSigner(load_secret(settings))
    await Dispatcher(
        db, renderer=Renderer(), signer=signer, config=DispatcherConfig(public_url=PUBLIC)
    ).drain()

    sunk = (await client.get(f"{base}/sink/messages", headers=h)).json()["data"][0]
    parsed = email.message_from_bytes(sunk["content"].encode(), policy=policy.default)
    html_part = parsed.get_body(("html",))
    text_part = parsed.get_body(("plain",))
    assert html_part is not None
    assert text_part is not None
    html_links = re.findall(r'href="([^"]+)"', html_part.get_content())
    text_links = re.findall(r"http://tidings\.test/l/\S+?(?=\.\s)", text_part.get_content())
    assert all(link.startswith(f"{PUBLIC}/l/") for link in html_links)
    assert "survey.example" not in html_part.get_content()
    assert text_links == [html_links[0]]  # the same URL in both parts: one link
    assert text_part.get_content().rstrip().endswith(". Bye")  # punctuation kept outside

    async with db.session() as session:  # past the bot rule's "too soon after sending"
        await session.execute(update(Message).values(sent_at=utcnow() - timedelta(hours=1)))
        await session.commit()
    client.headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
    first = await client.get(html_links[0].removeprefix(PUBLIC))
    assert first.status_code == 302
    assert first.headers["location"] == "https://survey.example/s?c=A%26B&x=1"
    second = await client.get(html_links[1].removeprefix(PUBLIC))
    assert second.headers["location"] == "https://acme.example/"
    again = await client.get(html_links[0].removeprefix(PUBLIC))
    assert again.status_code == 302
    done = (await client.get(f"{base}/broadcasts/{broadcast['id']}", headers=h)).json()
    assert done["clicked_count"] == 1  # one recipient, three clicks

    token = html_links[0].rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert (await client.get(f"/l/{tampered}")).status_code == 404
    unknown = signer.sign("click", 999_999, 0)
    assert (await client.get(f"/l/{unknown}")).status_code == 404
    unsubscribe_token = signer.sign("unsubscribe", 1)
    assert (await client.get(f"/l/{unsubscribe_token}")).status_code == 404
