"""A template over its render budget fails its own messages with the reason, and a
broadcast of another org whose messages share the batch is sent: the runaway template
costs its batch about twice its time limit, not once per message."""

from __future__ import annotations

import pytest

from tests.integration.dispatcher.test_poison import outcomes
from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, campaign, email_campaign
from tidings import metrics
from tidings.content.render import Limits, Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.dispatcher.retry import RetryPolicy
from tidings.testing import RecordingChannel

# 2**40 macro calls that print nothing: only the clock stops it.
SPINNER = (
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
)
# A list nested in itself by doubling, then stringified.
NESTER = (
    "{% set ns = namespace(v=['x' * 100]) %}{% for i in range(24) %}"
    "{% set ns.v = [ns.v, ns.v] %}{% endfor %}{{ ns.v|upper }}"
)
PEOPLE = [{"email": f"p{i}@example.com", "first_name": f"P{i}"} for i in range(30)]


@pytest.mark.parametrize(
    ("text", "reason", "kind"),
    [
        (SPINNER, "line 1: rendering took over 0.2 s", "time"),
        (NESTER, "line 1: this list is over 1000000 characters", "size"),
    ],
    ids=["time", "size"],
)
async def test_a_bomb_fails_its_own_messages_and_another_orgs_broadcast_is_sent(
    db: Database, text: str, reason: str, kind: str
) -> None:
    bomber, other = await make_org(db, "Bomber"), await make_org(db, "Other")
    bomb = await campaign(
        db, bomber, channel="email", subject="Hi", text=text, name="bomb",
        template_name="bomb-t", from_email="news@bomber.example",
    )  # fmt: skip
    bombed = await broadcast_now(db, bomber, bomb, (await audience(db, bomber, PEOPLE)).list_id)
    fine = await broadcast_now(
        db, other, await email_campaign(db, other), (await audience(db, other, PEOPLE)).list_id
    )
    channel = RecordingChannel()
    worker = Dispatcher(
        db,
        renderer=Renderer(Limits(max_render_seconds=0.2)),
        config=DispatcherConfig(batch_size=100, retry=RetryPolicy(max_attempts=1)),
        channels=lambda spec, db: channel,
    )
    refusals = metrics.RENDER_BUDGET_REFUSALS.labels(kind)
    before = refusals._value.get()

    await worker.drain()

    found = await outcomes(db, bombed)
    assert found.pop("<broadcast>") == ("SENT", None)  # every message has its outcome
    assert set(found.values()) == {("failed", reason)}
    assert len(found) == len(PEOPLE)
    sent = await outcomes(db, fine)
    assert sent.pop("<broadcast>") == ("SENT", None)
    assert set(sent.values()) == {("sent", None)}
    assert {m.org_id for m in channel.messages} == {other.id}
    assert sorted(m.recipient for m in channel.messages) == sorted(sent)
    renders_refused = refusals._value.get() - before
    if kind == "time":  # once the campaign has spent its time limit, the rest are not rendered
        assert 1 <= renders_refused < len(PEOPLE)
    else:  # a refusal that costs milliseconds is made per message: it may depend on the contact
        assert renders_refused == len(PEOPLE)
