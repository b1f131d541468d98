"""The kinds of events Tidings records (`tidings.events`) and delivers to webhooks
(`tidings.webhooks`): a vocabulary both speak, kept below both so that neither imports the
other for it."""

EVENT_TYPES = (
    "sent",
    "delivered",
    "failed",
    "bounced",
    "deferred",
    "opened",
    "clicked",
    "played",
    "complained",
    "unsubscribed",
)
