"""django-post-office, the Python peer, queueing and sending the benchmark's email.

Runs in its own virtualenv (bench/.peer-venv, made by bench/peers.py: Django,
django-post-office and psycopg; never a Tidings dependency), with Django configured in
code, a PostgreSQL database and Django's SMTP backend pointed at the benchmark's
smtp-sink. Each command prints one JSON line on stdout.

    python bench/peer_post_office.py --database NAME --port SINK_PORT migrate
    python bench/peer_post_office.py --database NAME --port SINK_PORT queue --messages N
    python bench/peer_post_office.py --database NAME --port SINK_PORT send --processes P

`queue` queues N emails with `mail.send_many`: the same subject, HTML and text as
Tidings sends (bench/data.py; Jinja's `{{ name }}` reads the same in Django's template
language), personalised per recipient with the same contact fields, rendered at delivery
(`render_on_delivery=True`) as Tidings renders at dispatch. `send` runs the package's own
`send_queued_mail --processes P` until the queue is empty, timed, and then deletes the
sent emails so that the next round starts from an empty queue. django-post-office's
settings are its defaults (threads per process, log level) but for the backend and the
batch size (--batch, 1,000 rather than 100: each batch opens its own SMTP connection and,
with several processes, its own process pool, so a small batch would understate it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent))  # for bench.data

import django
from bench.data import HTML, SUBJECT, TEXT, contact_rows
from django.conf import settings
from django.core.management import call_command

QUEUE_CHUNK = 5_000


def configure(database: str, port: int, batch: int) -> None:
    settings.configure(
        DEBUG=False,
        USE_TZ=True,
        SECRET_KEY="bench-only-not-a-secret",  # noqa: S106
        INSTALLED_APPS=["django.contrib.contenttypes", "post_office"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": database,
                "USER": "postgres",
                "HOST": "127.0.0.1",
                "PORT": "5432",
            }
        },
        TEMPLATES=[
            {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
        ],
        EMAIL_BACKEND="post_office.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        POST_OFFICE={
            "BACKENDS": {"default": "django.core.mail.backends.smtp.EmailBackend"},
            "BATCH_SIZE": batch,
        },
        DEFAULT_FROM_EMAIL="Acme Éditions <news@acme.example>",
    )
    django.setup()


def context(row: dict[str, Any]) -> dict[str, Any]:
    """What Tidings' template sees of a contact: its fields, its attributes, `contact`."""
    fields = {key: value for key, value in row.items() if key != "attributes"}
    return {**fields, **row["attributes"], "contact": row}


def queue(messages: int) -> dict[str, Any]:
    from post_office import mail
    from post_office.models import Email, EmailTemplate

    template, _ = EmailTemplate.objects.update_or_create(
        name="bench", defaults={"subject": SUBJECT, "content": TEXT, "html_content": HTML}
    )
    started = time.perf_counter()
    for start in range(0, messages, QUEUE_CHUNK):
        rows = contact_rows(start, min(start + QUEUE_CHUNK, messages))
        mail.send_many(
            [
                {
                    "sender": "Acme Éditions <news@acme.example>",
                    "recipients": [row["email"]],
                    "template": template,
                    "context": context(row),
                    "render_on_delivery": True,
                }
                for row in rows
            ]
        )
    seconds = time.perf_counter() - started
    sample = Email.objects.order_by("id").first()
    assert sample is not None
    size = len(sample.email_message().message().as_bytes())
    return {"queued": messages, "seconds": round(seconds, 2), "message_bytes": size}


def send(processes: int) -> dict[str, Any]:
    from post_office.models import STATUS, Email, Log

    started = time.perf_counter()
    call_command("send_queued_mail", processes=processes)
    seconds = time.perf_counter() - started
    sent = Email.objects.filter(status=STATUS.sent).count()
    failed = Email.objects.filter(status=STATUS.failed).count()
    left = Email.objects.filter(status__in=[STATUS.queued, STATUS.requeued]).count()
    Log.objects.all().delete()
    Email.objects.all().delete()
    return {
        "processes": processes,
        "seconds": round(seconds, 2),
        "sent": sent,
        "failed": failed,
        "left": left,
        "messages_per_second": round(sent / seconds) if seconds else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["migrate", "queue", "send"])
    parser.add_argument("--database", required=True, help="a PostgreSQL database name")
    parser.add_argument("--port", type=int, required=True, help="smtp-sink's port")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--batch", type=int, default=1000, help="POST_OFFICE BATCH_SIZE (the package's is 100)"
    )
    args = parser.parse_args()
    configure(args.database, args.port, args.batch)
    if args.command == "migrate":
        call_command("migrate", verbosity=0)
        result: dict[str, Any] = {"migrated": True}
    elif args.command == "queue":
        result = queue(args.messages)
    else:
        result = send(args.processes)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
