"""API intake writes a contact, a list membership and a message per recipient, and the
dispatcher a link per tracked URL: list members, contacts and links lose their foreign keys.

On PostgreSQL a foreign key is checked per inserted row by a trigger that locks the
referenced row `FOR KEY SHARE`. Every concurrent invite request adds its members to the
same list and its contacts to the same org, so those few parent rows were share-locked
by many transactions at once: PostgreSQL then builds a multixact per lock, and the
statements waited on each other. With `log_min_duration_statement = 0` during
`python bench/intake_walr.py --postgres` (500 recipients a request, 8 at a time), the
list members' `INSERT … SELECT` took 30.1 ms a request and the contacts' 13.8 ms, against
4.8 ms for the request's 500 messages, which have had no keys since 0010. Links: the two
keys cost a 2,000-message batch with tracking about 44 ms.

What the keys guarded, the code does: members are written for contacts just upserted
(or read) in the same request, to a list it has read; deleting a list deletes its members
first; contacts are never deleted (erasure keeps the row and drops its memberships);
links are written with the message they belong to; nothing deletes orgs.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = {  # table → (constraint, column, referred table, ON DELETE)
    "list_members": (
        ("fk_list_members_list_id_lists", "list_id", "lists", "CASCADE"),
        ("fk_list_members_contact_id_contacts", "contact_id", "contacts", "CASCADE"),
        ("fk_list_members_org_id_orgs", "org_id", "orgs", "CASCADE"),
    ),
    "contacts": (("fk_contacts_org_id_orgs", "org_id", "orgs", "CASCADE"),),
    "links": (
        ("fk_links_message_id_messages", "message_id", "messages", "CASCADE"),
        ("fk_links_org_id_orgs", "org_id", "orgs", "CASCADE"),
    ),
}


def upgrade() -> None:
    for table, keys in KEYS.items():
        with op.batch_alter_table(table) as batch:
            for name, _, _, _ in keys:
                batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    for table, keys in KEYS.items():
        with op.batch_alter_table(table) as batch:
            for name, column, referred, ondelete in keys:
                batch.create_foreign_key(name, referred, [column], ["id"], ondelete=ondelete)
