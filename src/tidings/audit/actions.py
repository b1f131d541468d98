"""Every `manage` action the audit log records, named `<target kind>.<verb>`.

The target kind is the part before the dot (`Action.target_kind`), so an action and the
kind of what it acted on cannot disagree. A route that changes an org's data with a
`manage` key records one of these (tests/acceptance/test_audit_routes.py walks every
such route), and so does each CLI command that writes.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    ORG_CREATE = "org.create"
    ORG_UPDATE = "org.update"
    KEY_CREATE = "key.create"
    KEY_REVOKE = "key.revoke"
    MEMBER_CREATE = "member.create"
    MEMBER_RESET = "member.reset_password"  # the password, never written here
    MEMBER_UPDATE = "member.update"
    MEMBER_DELETE = "member.delete"
    CONTACT_UPSERT = "contact.upsert"
    CONTACT_IMPORT = "contact.import"
    CONTACT_EXPORT = "contact.export"
    CONTACT_ERASE = "contact.erase"
    LIST_CREATE = "list.create"
    LIST_UPDATE = "list.update"
    LIST_DELETE = "list.delete"
    LIST_MEMBERS_ADD = "list.members_add"
    LIST_MEMBERS_REMOVE = "list.members_remove"
    SEGMENT_CREATE = "segment.create"
    SEGMENT_UPDATE = "segment.update"
    SEGMENT_DELETE = "segment.delete"
    TEMPLATE_CREATE = "template.create"
    TEMPLATE_UPDATE = "template.update"
    TEMPLATE_DELETE = "template.delete"
    TEMPLATE_RESTORE = "template.restore"
    CAMPAIGN_CREATE = "campaign.create"
    CAMPAIGN_UPDATE = "campaign.update"
    CAMPAIGN_DELETE = "campaign.delete"
    CONNECTION_CREATE = "connection.create"
    CONNECTION_UPDATE = "connection.update"
    CONNECTION_DELETE = "connection.delete"
    APPLICATION_CREATE = "application.create"
    APPLICATION_INTEGRATION_PUT = "application.integration_put"
    APPLICATION_DELETE = "application.delete"
    CREDITS_TOP_UP = "credits.top_up"
    PRICES_SET = "prices.set"
    SUPPRESSION_ADD = "suppression.add"
    SUPPRESSION_REMOVE = "suppression.remove"
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_UPDATE = "webhook.update"
    WEBHOOK_DELETE = "webhook.delete"
    WEBHOOK_TEST = "webhook.test"
    DOMAIN_CREATE = "domain.create"
    DOMAIN_DELETE = "domain.delete"
    DOMAIN_KEY_CREATE = "domain.key_create"
    DOMAIN_KEY_ACTIVATE = "domain.key_activate"
    DOMAIN_KEY_DELETE = "domain.key_delete"

    @property
    def target_kind(self) -> str:
        return self.value.partition(".")[0]
