"""The data a template sees: plain values only, the same at preview and at send time.

{{ first_name }}, {{ email }} …          the contact's fields
{{ plan }}                               an attribute (attributes override fields)
{{ survey_url }}                         a per-message variable (variables override both)
{{ contact.first_name }}, {{ contact.attributes.plan }}, {{ vars.survey_url }}
                                         the same, by namespace, never overridden
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FIELDS = ("email", "phone", "first_name", "last_name", "locale", "timezone")


def render_context(
    contact: Mapping[str, Any] | None, variables: Mapping[str, Any] | None
) -> dict[str, Any]:
    fields = {name: (contact or {}).get(name) for name in FIELDS}
    attributes = dict((contact or {}).get("attributes") or {})
    extra = dict(variables or {})
    return {
        **fields,
        **attributes,
        **extra,
        "contact": {**fields, "attributes": attributes},
        "vars": extra,
    }
