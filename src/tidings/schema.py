"""Every table, imported in one place so `Base.metadata` is complete (Alembic, tests).

It sits above every domain package (it imports them all), beside the composition root;
nothing in a domain package imports it."""

from tidings.applications.models import Application, Integration
from tidings.audit.models import AuditEntry
from tidings.broadcasts.models import Broadcast
from tidings.campaigns.models import Campaign
from tidings.channels.models import SinkMessage
from tidings.connections.models import Connection, ConnectionHealth
from tidings.contacts.models import Contact, ContactImport
from tidings.credits.models import CreditBalance, CreditEntry, Price
from tidings.db.base import Base
from tidings.dispatcher.limit_models import ConnectionBucket, ConnectionSlot
from tidings.dispatcher.worker_models import Worker
from tidings.domains.models import DkimKey, SendingDomain
from tidings.events.models import Event
from tidings.idempotency.models import IdempotencyKey
from tidings.keys.models import ApiKey
from tidings.links.models import Link
from tidings.lists.models import ContactList, ListMember
from tidings.members.models import ConsoleSession, Member, SignInAttempt
from tidings.orgs.models import Org
from tidings.outbox.models import Message, MessageAttempt
from tidings.reports.models import PendingReport, RejectedReport
from tidings.segments.models import Segment
from tidings.suppressions.models import SoftBounce, Suppression
from tidings.templates.models import Template
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Application",
    "AuditEntry",
    "Base",
    "Broadcast",
    "Campaign",
    "Connection",
    "ConnectionBucket",
    "ConnectionHealth",
    "ConnectionSlot",
    "ConsoleSession",
    "Contact",
    "ContactImport",
    "ContactList",
    "CreditBalance",
    "CreditEntry",
    "DkimKey",
    "Event",
    "IdempotencyKey",
    "Integration",
    "Link",
    "ListMember",
    "Member",
    "Message",
    "MessageAttempt",
    "Org",
    "PendingReport",
    "Price",
    "RejectedReport",
    "Segment",
    "SendingDomain",
    "SignInAttempt",
    "SinkMessage",
    "SoftBounce",
    "Suppression",
    "Template",
    "WebhookDelivery",
    "WebhookEndpoint",
    "Worker",
]
