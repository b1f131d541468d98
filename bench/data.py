"""The data every benchmark sends: the ~3 KB personalised email, the SMS text, contacts.

Pure data, no Tidings import: bench/peer_post_office.py reads it too, in its own
virtualenv, so that django-post-office sends the same messages to the same people.
"""

from __future__ import annotations

from typing import Any

PLANS = ("free", "starter", "pro", "enterprise")
CITIES = ("Lyon", "Zürich", "Porto", "Kraków", "Leeds", "Gent", "Turku")
FIRST_NAMES = ("Ada", "Zoë", "Grace", "José", "Linus", "Margaret", "Søren", "Alan")

# Subject and body merge several fields; the HTML has a link, which click tracking rewrites.
SUBJECT = "{{ first_name }}, your {{ plan }} plan in {{ city }}: {{ seats }} seats to {{ renews }}"
PARAGRAPH = (
    '<p style="font-family: Helvetica, Arial, sans-serif; font-size: 15px; line-height: 1.5;'
    ' color: #333333; margin: 0 0 16px 0;">Your team at {{ company }} has {{ seats }} seats on'
    " the {{ plan }} plan. Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do"
    " eiusmod tempor incididunt ut labore et dolore magna aliqua.</p>\n"
)
HTML = (
    "<!doctype html>\n<html><body>\n<h1>Hello {{ first_name }} {{ last_name }}</h1>\n"
    + PARAGRAPH * 5
    + '<p>Account: <a href="https://acme.example/a/{{ contact.email }}">{{ email }}</a>'
    " · {{ city }} · renews {{ renews }}</p>\n</body></html>\n"
)
TEXT = (
    "Hello {{ first_name }} {{ last_name }},\n\n"
    + "Your team at {{ company }} has {{ seats }} seats on the {{ plan }} plan. Lorem ipsum"
    " dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.\n\n"
    * 3
    + "Account: {{ email }} · {{ city }} · renews {{ renews }}\n"
)
SMS_TEXT = "{{ first_name }}, your {{ plan }} plan renews {{ renews }}: {{ seats }} seats."


def contact_rows(start: int, stop: int, *, phones: bool = False) -> list[dict[str, Any]]:
    """Contacts start…stop-1, each with five attributes (and a Swiss mobile number)."""
    return [
        {
            "email": f"user{i}@example.com",
            **({"phone": f"+4179{i:07d}"} if phones else {}),
            "first_name": f"{FIRST_NAMES[i % len(FIRST_NAMES)]}{i}",
            "last_name": f"Last{i}",
            "attributes": {
                "plan": PLANS[i % len(PLANS)],
                "seats": i % 50 + 1,
                "city": CITIES[i % len(CITIES)],
                "company": f"Company {i % 997}",
                "renews": f"2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}",
            },
        }
        for i in range(start, stop)
    ]
