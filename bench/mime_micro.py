"""Micro-benchmark of message assembly: `tidings.content.mime.build` against EmailMessage.

    python bench/mime_micro.py [--count 20000]

Builds --count personalised messages (html + text of about 3 KB together, a non-ASCII
subject, a non-ASCII sender name, per-recipient List-Unsubscribe headers) and prints the
mean µs per message, first with `build`, then with `email.message.EmailMessage` and
`as_bytes()` under the SMTP policy (CRLF), the way most Python senders do it. Inputs are
rendered before timing starts, so only assembly is measured. Last, `html_to_text` of each
message's HTML: what a message whose HTML-only template runs code costs on top to get
its text part (a substitution-only one has its text made once per template instead,
`dispatcher/templates.py`).
"""

from __future__ import annotations

import argparse
import email.policy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address as StdAddress
from email.message import EmailMessage
from email.utils import format_datetime

from tidings.content.mime import Address, Email, build
from tidings.content.plaintext import html_to_text

SUBJECT = "Café — 🎉 votre invitation au lancement"
SENDER = Address("news@mail.example.com", "Éditions Tidings")
PARAGRAPH = (
    "Bonjour {name}, nous sommes ravis de vous inviter à la soirée de lancement de notre "
    "nouvelle collection. Réservez votre place avant vendredi : les places sont limitées."
)


def messages(count: int) -> list[Email]:
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        name = f"Adèle Lovelace{i}"
        text = "\n\n".join([PARAGRAPH.format(name=name)] * 8)  # ~1.3 KB
        html = (
            "<!doctype html><html><body>"
            + "".join(f'<p style="margin:0 0 12px">{PARAGRAPH.format(name=name)}</p>\n' * 8)
            + f'<a href="https://example.com/u/{i:08x}">Se désinscrire</a></body></html>'
        )  # ~1.7 KB
        out.append(
            Email(
                sender=SENDER,
                to=Address(f"user{i}@example.com", name),
                subject=SUBJECT,
                text=text,
                html=html,
                message_id=f"{i}.{now.timestamp():.0f}@mail.example.com",
                date=now,
                headers=(
                    (
                        "List-Unsubscribe",
                        f"<https://example.com/u/{i:08x}>, <mailto:unsub+{i:08x}@example.com>",
                    ),
                    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
                    ("Feedback-ID", "c42:org7:tidings"),
                ),
            )
        )
    return out


def with_email_message(message: Email) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    sender = message.sender
    msg["From"] = StdAddress(sender.name or "", addr_spec=sender.email)
    msg["To"] = StdAddress(message.to.name or "", addr_spec=message.to.email)
    msg["Subject"] = message.subject
    msg["Date"] = format_datetime(message.date)
    msg["Message-ID"] = f"<{message.message_id}>"
    for name, value in message.headers:
        msg[name] = value
    msg.set_content(message.text or "", cte="quoted-printable")
    msg.add_alternative(message.html or "", subtype="html", cte="quoted-printable")
    return msg.as_bytes()


def time_per_message(fn: Callable[[Email], bytes], batch: list[Email]) -> tuple[float, int]:
    started = time.perf_counter()
    total = sum(len(fn(message)) for message in batch)
    return (time.perf_counter() - started) / len(batch) * 1e6, total // len(batch)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    batch = messages(args.count)

    def text_part(message: Email) -> bytes:
        return html_to_text(message.html or "").encode()

    for label, fn in [
        ("mime.build", build),
        ("EmailMessage", with_email_message),
        ("html_to_text", text_part),
    ]:
        fn(batch[0])  # warm imports and caches outside the timing
        micros, size = time_per_message(fn, batch)
        print(f"{label:<13} {micros:8.1f} µs/message  ({1e6 / micros:9,.0f}/s, {size:,} bytes)")


if __name__ == "__main__":
    main()
