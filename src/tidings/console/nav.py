"""The console's navigation: every page of the console, in the order the menu shows
them, with the scope a member needs to see it in the menu (the page checks again)."""

from __future__ import annotations

from dataclasses import dataclass

from tidings.api.principal import Scope


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    label: str
    scope: Scope = Scope.READ

    def is_current(self, path: str) -> bool:
        if self.path == "/":
            return path == "/"
        return path == self.path or path.startswith(self.path + "/")


NAV: tuple[Entry, ...] = (
    Entry("/", "Overview"),
    Entry("/broadcasts", "Broadcasts"),
    Entry("/compose", "Compose", Scope.SEND),
    Entry("/messages", "Messages"),
    Entry("/sink", "Sink"),
    Entry("/contacts", "Contacts"),
    Entry("/lists", "Lists"),
    Entry("/segments", "Segments"),
    Entry("/templates", "Templates"),
    Entry("/campaigns", "Campaigns"),
    Entry("/connections", "Connections"),
    Entry("/suppressions", "Suppressions"),
    Entry("/webhooks", "Webhooks"),
    Entry("/keys", "API keys", Scope.MANAGE),
    Entry("/members", "Members", Scope.MANAGE),
    Entry("/credits", "Credits"),
    Entry("/audit", "Audit log", Scope.MANAGE),
    Entry("/settings", "Settings"),
)
