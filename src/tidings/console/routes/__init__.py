"""The console's pages, one module per page. The composition root (`tidings.app`)
includes the router of each module in `PAGES`: a new page is a module here and one line
in that tuple (docs/console.md)."""

from tidings.console.routes import (
    audit_log,
    broadcasts,
    campaigns,
    compose,
    connections,
    contacts,
    credits,
    keys,
    lists,
    members,
    messages,
    overview,
    segments,
    settings,
    sign_in,
    sink,
    suppressions,
    templates,
    webhooks,
)

PAGES = (
    sign_in,
    overview,
    broadcasts,
    compose,
    messages,
    sink,
    contacts,
    lists,
    segments,
    templates,
    campaigns,
    connections,
    suppressions,
    keys,
    members,
    audit_log,
    credits,
    webhooks,
    settings,
)
