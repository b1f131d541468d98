"""Seed 001 (email campaign) under /compat/octopush: the document's example request, its
response field by field, every row of the coercion table in docs/compat.md, and every
error code, in the `{"code", "message"}` shape."""

from __future__ import annotations

import email
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from tests.support.factories import OrgWithKey, make_org
from tidings.compat import octopush
from tidings.compat.routing import Failure
from tidings.db.engine import Database
from tidings.errors import InsufficientCredit

Drain = Callable[[], Awaitable[None]]
PATH = "/compat/octopush/email/campaign/send"

# The document's request. Its first address is hidden by the page's e-mail obfuscation
# ("[email protected]"); any address stands for it.
EXAMPLE: dict[str, Any] = {
    "recipients": [
        {
            "email": "axelle.durand@example.com",
            "first_name": "Axelle",
            "last_name": "Durand",
            "param1": None,
            "param2": None,
            "param3": None,
            "param4": None,
            "param5": None,
        },
        {
            "phone_number": "+2222333334444555",
            "first_name": "John",
            "last_name": "Smith",
            "param3": "M",
        },
    ],
    "subject": "Your October offer",
    "template_name": "october",
    "name_from": "Acme Shop",
    "email_from": "news@acme.example",
    "purpose": "alert",
    "send_at": None,
    "emailing_service": "mailbox",
    "body_format": "plain_text",
    "language": "fr",
    "list_name": "October buyers",
}
TEMPLATE = {
    "name": "october",
    "channel": "email",
    "subject": "Offer for {{ first_name }}",
    "text": "Dear {{ first_name }} {{ last_name }}, [{{ param1 }}] size {{ param3 }}.",
}


async def _template(client: httpx.AsyncClient, org: OrgWithKey, **body: Any) -> None:
    response = await client.post(
        f"/v1/orgs/{org.id}/templates", headers=org.bearer, json={**TEMPLATE, **body}
    )
    assert response.status_code == 201, response.text


@dataclass
class Sent:
    """One request to the dialect and everything it left behind, read the native way."""

    status: int
    body: dict[str, Any]
    mails: list[EmailMessage]
    campaign: dict[str, Any] | None
    broadcast: dict[str, Any] | None
    contacts: list[dict[str, Any]]
    lists: list[dict[str, Any]]

    @property
    def mail(self) -> EmailMessage:
        [only] = self.mails
        return only

    def text(self) -> str:
        part = self.mail.get_body(("plain",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]

    def html(self) -> str | None:
        part = self.mail.get_body(("html",))
        return None if part is None else str(part.get_content())  # type: ignore[attr-defined]


async def _send(
    client: httpx.AsyncClient, org: OrgWithKey, drain: Drain, body: Any, **kwargs: Any
) -> Sent:
    if isinstance(body, bytes):
        response = await client.post(PATH, headers=org.header_pair, content=body)
    else:
        response = await client.post(PATH, headers=org.header_pair, json=body)
    await drain()
    base, h = f"/v1/orgs/{org.id}", org.bearer
    sunk = (await client.get(f"{base}/sink/messages", headers=h)).json()["data"]
    mails = [email.message_from_bytes(m["content"].encode(), policy=policy.default) for m in sunk]
    ticket = response.json().get("ticket_number")
    campaigns = (await client.get(f"{base}/campaigns", headers=h)).json()["data"]
    broadcasts = (await client.get(f"{base}/broadcasts", headers=h)).json()["data"]
    return Sent(
        status=response.status_code,
        body=response.json(),
        mails=mails,  # type: ignore[arg-type]
        campaign=next((c for c in campaigns if c["name"] == ticket), None),
        broadcast=next((b for b in broadcasts if b["name"] == ticket), None),
        contacts=(await client.get(f"{base}/contacts", headers=h)).json()["data"],
        lists=(await client.get(f"{base}/lists", headers=h)).json()["data"],
    )


async def test_the_documented_example_sends_the_email_contact_only_personalised(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    await _template(client, org)
    sent = await _send(client, org, drain, EXAMPLE)
    assert sent.status == 200, sent.body
    assert set(sent.body) == {
        "ticket_number",
        "number_of_contacts",
        "total_cost",
        "residual_credit",
    }
    assert re.fullmatch(r"email_[0-9a-f]{14}", sent.body["ticket_number"])
    assert sent.body["number_of_contacts"] == 1  # John has a phone number only
    assert isinstance(sent.body["total_cost"], float)
    assert sent.body["total_cost"] >= 0
    assert isinstance(sent.body["residual_credit"], float)
    assert sent.body["residual_credit"] >= 0

    mail = sent.mail
    assert mail["To"] == "Axelle Durand <axelle.durand@example.com>"
    assert mail["From"] == "Acme Shop <news@acme.example>"
    assert mail["Subject"] == "Your October offer"  # the request's subject wins
    assert sent.text().strip() == "Dear Axelle Durand, [] size ."
    assert "List-Unsubscribe" not in mail  # alert: transactional
    assert sent.campaign is not None
    assert sent.campaign["purpose"] == "transactional"
    assert sent.campaign["external_id"] == sent.body["ticket_number"]
    assert sent.broadcast is not None
    assert sent.broadcast["status"] == "SENT"
    assert [c["email"] for c in sent.contacts] == ["axelle.durand@example.com"]
    [listed] = sent.lists
    assert (listed["name"], listed["contacts_count"]) == ("October buyers", 1)


async def test_the_cost_and_balance_are_read_from_the_ledger(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    await _template(client, org)
    sent = await _send(client, org, drain, EXAMPLE)
    assert sent.status == 200, sent.body
    async with db.session() as session:
        from sqlalchemy import func, select

        from tidings.credits.models import CreditBalance
        from tidings.outbox.models import Message

        cost = await session.scalar(
            select(func.coalesce(func.sum(Message.cost), 0)).where(Message.org_id == org.id)
        )
        balance = await session.scalar(
            select(CreditBalance.balance).where(CreditBalance.org_id == org.id)
        )
    assert sent.body["total_cost"] == pytest.approx(int(cost or 0) / 1e6)
    assert sent.body["residual_credit"] == pytest.approx(int(balance or 0) / 1e6)


@pytest.mark.parametrize(
    ("language", "line"),
    [
        ("fr", "Pour ne plus recevoir ces emails"),
        ("de-CH", "Um diese E-Mails nicht mehr zu erhalten"),
        ("ES", "Para dejar de recibir estos correos"),
        ("it", "Per non ricevere più queste email"),
        ("nl", "Om deze e-mails niet meer te ontvangen"),
        ("pt_BR", "Para deixar de receber estes emails"),
        ("en", "To stop receiving these emails"),
        ("klingon", "To stop receiving these emails"),
    ],
)
async def test_marketing_mail_can_be_unsubscribed_from_in_the_requested_language(
    client: httpx.AsyncClient, db: Database, drain: Drain, language: str, line: str
) -> None:
    org = await make_org(db)
    await _template(client, org)
    sent = await _send(
        client, org, drain, {**EXAMPLE, "purpose": "wholesale", "language": language}
    )
    assert sent.status == 200, sent.body
    mail = sent.mail
    assert mail["List-Unsubscribe"].startswith("<http")
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert line in sent.text()
    assert sent.campaign is not None
    assert sent.campaign["purpose"] == "marketing"


async def test_a_future_send_at_schedules_the_campaign(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    await _template(client, org)
    later = (datetime.now(UTC) + timedelta(hours=3)).replace(microsecond=0)
    at = later.astimezone(timezone(timedelta(hours=-7))).isoformat()  # as the document writes it
    sent = await _send(client, org, drain, {**EXAMPLE, "send_at": at})
    assert sent.status == 200, sent.body
    assert sent.body["number_of_contacts"] == 1
    assert sent.mails == []
    assert sent.broadcast is not None
    assert sent.broadcast["status"] == "SCHEDULED"
    assert datetime.fromisoformat(sent.broadcast["scheduled_at"]) == later


async def test_list_name_creates_the_list_then_adds_to_it(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    await _template(client, org)
    first = await _send(client, org, drain, EXAMPLE)
    assert first.status == 200, first.body
    other = {**EXAMPLE, "recipients": [{"email": "zoe@example.com", "first_name": "Zoé"}]}
    second = await _send(client, org, drain, other)
    assert second.status == 200, second.body
    [listed] = second.lists
    assert (listed["name"], listed["contacts_count"]) == ("October buyers", 2)


async def test_text_is_sent_literally_with_simple_placeholders(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    body = {
        **EXAMPLE,
        "template_name": None,
        "subject": "Hi {first_name} {{ 7 * 7 }}",
        "text": "Hello {first_name} {last_name} ({param2}): {{ 6 * 7 }} {% if x %}{unknown}",
    }
    body["recipients"] = [{**EXAMPLE["recipients"][0], "param2": 12}]
    sent = await _send(client, org, drain, body)
    assert sent.status == 200, sent.body
    assert sent.mail["Subject"] == "Hi Axelle {{ 7 * 7 }}"
    assert sent.text().strip() == "Hello Axelle Durand (12): {{ 6 * 7 }} {% if x %}{unknown}"
    assert sent.html() is None


async def test_html_text_becomes_the_html_part_with_a_derived_text_part(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    recipient = {**EXAMPLE["recipients"][0], "first_name": "<Ax & elle>"}
    body = {
        **EXAMPLE,
        "template_name": None,
        "recipients": [recipient],
        "body_format": "HTML",
        "text": "<html><body><p>Hi <b>{first_name}</b></p><p>A&amp;B {{ x }}</p></body></html>",
    }
    sent = await _send(client, org, drain, body)
    assert sent.status == 200, sent.body
    html = sent.html()
    assert html is not None
    assert "<p>Hi <b>&lt;Ax &amp; elle&gt;</b></p><p>A&amp;B {{ x }}</p>" in html
    assert sent.text().strip() == "Hi <Ax & elle>\n\nA&B {{ x }}"


async def test_emailing_service_picks_the_connection_marked_for_it(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    await _template(client, org)
    created = await client.post(
        f"/v1/orgs/{org.id}/connections",
        headers=org.bearer,
        json={"name": "gw", "channel": "email", "kind": "sink", "email_service": "gateway"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["email_service"] == "gateway"
    gateway = await _send(client, org, drain, {**EXAMPLE, "emailing_service": " Gateway "})
    assert gateway.campaign is not None
    assert gateway.campaign["connection_id"] == created.json()["id"]
    mailbox = await _send(client, org, drain, {**EXAMPLE, "emailing_service": "mailbox"})
    assert mailbox.campaign is not None
    assert mailbox.campaign["connection_id"] is None
    # Marking another connection moves the mark: one per org.
    again = await client.post(
        f"/v1/orgs/{org.id}/connections",
        headers=org.bearer,
        json={"name": "gw2", "channel": "email", "kind": "sink", "email_service": "gateway"},
    )
    assert again.status_code == 201, again.text
    listed = (await client.get(f"/v1/orgs/{org.id}/connections", headers=org.bearer)).json()
    marks = {c["name"]: c["email_service"] for c in listed}
    assert (marks["gw"], marks["gw2"]) == (None, "gateway")


# ---- The coercion table of docs/compat.md, row by row ------------------------------------

A = EXAMPLE["recipients"][0]
Check = Callable[[Sent], None]


def _mail_to(*addresses: str) -> Check:
    def check(sent: Sent) -> None:
        assert sent.status == 200, sent.body
        assert sorted(m["To"].addresses[0].addr_spec for m in sent.mails) == sorted(addresses)
        assert sent.body["number_of_contacts"] == len(addresses)

    return check


def _text_is(expected: str) -> Check:
    def check(sent: Sent) -> None:
        assert sent.status == 200, sent.body
        assert sent.text().strip() == expected

    return check


def _header_is(name: str, expected: str) -> Check:
    def check(sent: Sent) -> None:
        assert sent.status == 200, sent.body
        assert sent.mail[name] == expected

    return check


def _from(name: str) -> Check:
    return _header_is("From", f"{name} <{EXAMPLE['email_from']}>")


def _campaign_has(**expected: Any) -> Check:
    def check(sent: Sent) -> None:
        assert sent.status == 200, sent.body
        assert sent.campaign is not None
        assert {k: sent.campaign[k] for k in expected} == expected

    return check


def _sent_now(sent: Sent) -> None:
    assert sent.status == 200, sent.body
    assert sent.broadcast is not None
    assert sent.broadcast["status"] == "SENT"
    assert len(sent.mails) == 1


def _scheduled_at(moment: datetime) -> Check:
    def check(sent: Sent) -> None:
        assert sent.status == 200, sent.body
        assert sent.broadcast is not None
        assert sent.broadcast["status"] == "SCHEDULED"
        assert datetime.fromisoformat(sent.broadcast["scheduled_at"]) == moment

    return check


def _lists_are(*names: str) -> Check:
    def check(sent: Sent) -> None:
        assert sent.status == 200, sent.body
        assert [item["name"] for item in sent.lists] == list(names)

    return check


def _text_contains(fragment: str) -> Check:
    def check(sent: Sent) -> None:
        assert sent.status == 200, sent.body
        assert fragment in sent.text()

    return check


LATER = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
TEXT = {"template_name": None, "text": "{first_name}/{last_name}/{param1}/{param2}"}

# (row id as in docs/compat.md, changes to EXAMPLE, what must follow)
COERCIONS: list[tuple[str, dict[str, Any], Check]] = [
    ("unknown-field", {"campaign_type": 3, "sms_text": "x"}, _mail_to(A["email"])),
    ("recipients-object", {"recipients": A}, _mail_to(A["email"])),
    ("recipients-json-string", {"recipients": json.dumps([A])}, _mail_to(A["email"])),
    ("recipient-not-an-object", {"recipients": [A, 42, "x", None]}, _mail_to(A["email"])),
    (
        "email-cleaned",
        {"recipients": [{"email": " mailto:Bob @Example.COM "}, {"email": "Ann <ann@x.io>"}]},
        _mail_to("bob@example.com", "ann@x.io"),
    ),
    (
        "email-invalid",
        {"recipients": [A, {"email": "nope"}, {"phone_number": "+33600000000"}, {"email": 5}]},
        _mail_to(A["email"]),
    ),
    (
        "email-duplicate",
        {"recipients": [A, {**A, "email": A["email"].upper()}]},
        _mail_to(A["email"]),
    ),
    (
        "names-params-cast",
        {**TEXT, "recipients": [{**A, "first_name": 7, "last_name": 1.5, "param1": 42}]},
        _text_is("7/1.5/42/"),
    ),
    (
        "param-null-or-object",
        {**TEXT, "recipients": [{**A, "param1": None, "param2": {"a": 1}}]},
        _text_is("Axelle/Durand//"),
    ),
    (
        "names-control-characters",
        {**TEXT, "recipients": [{**A, "first_name": "Ax\r\nelle\t", "last_name": True}]},
        _text_is("Ax  elle///"),
    ),
    ("subject-cast", {"subject": 2024}, _header_is("Subject", "2024")),
    ("subject-control", {"subject": "Big\r\nBcc: x@y"}, _header_is("Subject", "Big  Bcc: x@y")),
    ("subject-missing-template", {"subject": None}, _header_is("Subject", "Offer for Axelle")),
    ("subject-missing-text", {**TEXT, "subject": ["?"]}, _header_is("Subject", "(no subject)")),
    ("template-name-cast", {"template_name": 2024}, _text_contains("Dear Axelle")),
    ("text-cast", {"template_name": None, "text": 12.5}, _text_is("12.5")),
    (
        "text-control",
        {"template_name": None, "text": "a\x00b\x07c\n\td"},
        _text_is("abc\n\td"),
    ),
    ("template-and-text", {"text": "ignored"}, _text_contains("Dear Axelle")),
    ("name-from-control", {"name_from": "Acme\r\nShop"}, _from("Acme  Shop")),
    ("name-from-wrong-type", {"name_from": {"x": 1}}, _header_is("From", "news@acme.example")),
    ("email-from-cleaned", {"email_from": "X <News@ACME.example >"}, _from("Acme Shop")),
    ("purpose-case", {"purpose": " ALERT "}, _campaign_has(purpose="transactional")),
    ("purpose-transactional", {"purpose": "transactional"}, _campaign_has(purpose="transactional")),
    ("purpose-wholesale", {"purpose": "Wholesale"}, _campaign_has(purpose="marketing")),
    ("purpose-default", {"purpose": 3}, _campaign_has(purpose="marketing")),
    ("send-at-no-offset", {"send_at": f"{LATER:%Y-%m-%dT%H:%M:%S}"}, _scheduled_at(LATER)),
    ("send-at-timestamp", {"send_at": int(LATER.timestamp())}, _scheduled_at(LATER)),
    ("send-at-timestamp-text", {"send_at": str(int(LATER.timestamp()))}, _scheduled_at(LATER)),
    ("send-at-unreadable", {"send_at": "tomorrow"}, _sent_now),
    ("send-at-past", {"send_at": "2018-10-03T07:42:39-07:00"}, _sent_now),
    ("emailing-service-unknown", {"emailing_service": "pigeon"}, _campaign_has(connection_id=None)),
    ("body-format-unknown", {**TEXT, "body_format": "markdown"}, _text_is("Axelle/Durand//")),
    ("body-format-template", {"body_format": "html"}, _text_contains("Dear Axelle")),
    ("language-region", {"language": "FR-ca"}, _campaign_has(language="fr")),
    ("language-unknown", {"language": ["fr"]}, _campaign_has(language="en")),
    ("list-name-cast", {"list_name": 2024}, _lists_are("2024")),
    ("list-name-control", {"list_name": "VIP\n2024"}, _lists_are("VIP 2024")),
    ("list-name-empty", {"list_name": "  "}, _lists_are()),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "check"), [pytest.param(c, k, id=i) for i, c, k in COERCIONS])
async def test_each_coercion_of_the_documented_table(
    client: httpx.AsyncClient,
    db: Database,
    drain: Drain,
    changes: dict[str, Any],
    check: Check,
) -> None:
    org = await make_org(db)
    await _template(client, org)
    await _template(client, org, name="2024")
    check(await _send(client, org, drain, {**EXAMPLE, **changes}))


async def test_recipients_past_the_cap_are_ignored(
    client: httpx.AsyncClient, db: Database, drain: Drain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(octopush, "MAX_RECIPIENTS", 2)
    org = await make_org(db)
    await _template(client, org)
    many = [{"email": f"p{n}@example.com"} for n in range(3)]
    _mail_to("p0@example.com", "p1@example.com")(
        await _send(client, org, drain, {**EXAMPLE, "recipients": many})
    )


def test_the_coercion_table_in_the_docs_lists_every_tested_row() -> None:
    from pathlib import Path

    docs = (Path(__file__).parents[3] / "docs" / "compat.md").read_text()
    section = docs.split("## Email campaign — /compat/octopush (seed 001)", 1)[1].split("\n## ")[0]
    rows = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M))
    assert rows == {i for i, _, _ in COERCIONS} | {"recipients-cap"}


# ---- Errors ----------------------------------------------------------------------------


def _error_shape(response: httpx.Response, status: int, code: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    assert isinstance(body["message"], str)
    assert body["message"]


async def test_authentication_and_scope_errors(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    await _template(client, org)
    _error_shape(await client.post(PATH, json=EXAMPLE), 401, 101)
    wrong = {**org.header_pair, "api-key": org.key[:-3] + "xyz"}
    _error_shape(await client.post(PATH, headers=wrong, json=EXAMPLE), 401, 101)
    _error_shape(
        await client.post(PATH, headers={"api-key": org.key}, json=EXAMPLE), 401, 101
    )  # no api-login
    reader = await client.post(
        f"/v1/orgs/{org.id}/keys", headers=org.bearer, json={"name": "r", "scopes": ["read"]}
    )
    read_only = {"api-login": org.login, "api-key": reader.json()["api_key"]}
    _error_shape(await client.post(PATH, headers=read_only, json=EXAMPLE), 403, 901)


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(b"{not json", 400, 100, id="not-json"),
        pytest.param(b"", 400, 100, id="empty-body"),
        pytest.param(b"[1, 2]", 400, 100, id="not-an-object"),
        pytest.param({**EXAMPLE, "recipients": []}, 400, 103, id="no-recipients"),
        pytest.param({**EXAMPLE, "recipients": "nobody"}, 400, 103, id="recipients-unreadable"),
        pytest.param(
            {**EXAMPLE, "recipients": [EXAMPLE["recipients"][1]]}, 400, 117, id="no-valid-email"
        ),
        pytest.param({**EXAMPLE, "template_name": None}, 400, 107, id="no-content"),
        pytest.param({**EXAMPLE, "template_name": "", "text": " "}, 400, 107, id="blank-content"),
        pytest.param({**EXAMPLE, "email_from": "not an address"}, 400, 106, id="bad-sender"),
        pytest.param({**EXAMPLE, "email_from": None}, 400, 106, id="no-sender"),
        pytest.param({**EXAMPLE, "template_name": "nope"}, 404, 902, id="unknown-template"),
    ],
)
async def test_request_errors(
    client: httpx.AsyncClient, db: Database, body: Any, status: int, code: int
) -> None:
    org = await make_org(db)
    await _template(client, org)
    if isinstance(body, bytes):
        headers = {**org.header_pair, "Content-Type": "application/json"}
        response = await client.post(PATH, headers=headers, content=body)
    else:
        response = await client.post(PATH, headers=org.header_pair, json=body)
    _error_shape(response, status, code)
    campaigns = (await client.get(f"/v1/orgs/{org.id}/campaigns", headers=org.bearer)).json()
    assert campaigns["data"] == []


async def test_an_sms_template_is_not_an_email_template(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _template(client, org, name="sms-one", channel="sms", subject=None, text="Hi")
    response = await client.post(
        PATH, headers=org.header_pair, json={**EXAMPLE, "template_name": "sms-one"}
    )
    _error_shape(response, 404, 902)


async def test_insufficient_credit_answers_104_and_leaves_no_campaign(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*args: Any, **kwargs: Any) -> Any:
        raise InsufficientCredit(needed=2_000_000, balance=1_000_000)

    monkeypatch.setattr("tidings.broadcasts.adhoc.create_broadcast", refuse)
    org = await make_org(db)
    body = {**EXAMPLE, "template_name": None, "text": "Hello"}
    response = await client.post(PATH, headers=org.header_pair, json=body)
    _error_shape(response, 402, 104)
    h = org.bearer
    assert (await client.get(f"/v1/orgs/{org.id}/campaigns", headers=h)).json()["data"] == []
    assert (await client.get(f"/v1/orgs/{org.id}/templates", headers=h)).json()["data"] == []


async def test_an_unexpected_failure_answers_999(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("tidings.broadcasts.adhoc.create_broadcast", fail)
    org = await make_org(db)
    await _template(client, org)
    response = await client.post(PATH, headers=org.header_pair, json=EXAMPLE)
    _error_shape(response, 500, 999)
    assert "boom" not in response.text


def test_any_other_invalid_value_answers_903() -> None:
    response = octopush.error_shape(Failure(422, "invalid-input", "name: taken"))
    assert response.status_code == 400
    assert json.loads(bytes(response.body)) == {"code": 903, "message": "name: taken"}
