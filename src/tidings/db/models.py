"""Every table, imported in one place so `Base.metadata` is complete (Alembic, tests)."""

from tidings.contacts.models import Contact
from tidings.db.base import Base
from tidings.keys.models import ApiKey
from tidings.lists.models import ContactList, ListMember
from tidings.orgs.models import Org
from tidings.segments.models import Segment

__all__ = ["ApiKey", "Base", "Contact", "ContactList", "ListMember", "Org", "Segment"]
