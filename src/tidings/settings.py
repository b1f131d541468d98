"""Configuration: one pydantic-settings class, read from `TIDINGS_*` environment variables.

Build it once at an entry point (`create_app`, the CLI) and pass it down; nothing else
reads the environment. `docs/settings.md` is the reference and must follow this file.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tidings.net.hostnames import fqdn_of_url, helo_name
from tidings.net.ssrf import PRIVATE_NETWORKS, OutboundPolicy

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///var/tidings.db"


class Settings(BaseSettings):
    """Every setting Tidings reads. Environment variable = `TIDINGS_` + the upper-cased name."""

    model_config = SettingsConfigDict(env_prefix="TIDINGS_", extra="ignore", frozen=True)

    database_url: str = Field(
        default=DEFAULT_DATABASE_URL,
        description=(
            "SQLAlchemy URL of the database: `sqlite+aiosqlite:///path.db` (embedded, the "
            "default, relative paths are relative to the working directory) or "
            "`postgresql+asyncpg://user:password@host:5432/name`."
        ),
    )
    database_pool_size: int = Field(
        default=10, ge=1, le=200, description="Connections per process (PostgreSQL only)."
    )
    database_echo: bool = Field(default=False, description="Log every SQL statement.")
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Signs the links in messages (unsubscribe, clicks). At least 32 characters. "
            "Unset on SQLite: generated once into `secret.key` beside the database file. "
            "Required on PostgreSQL, where every process must share it."
        ),
    )
    secret_keys: SecretStr | None = Field(
        default=None,
        description=(
            "Keys that seal secrets at rest (provider credentials, webhook secrets), newest "
            "first: `v2:<base64 of 32 bytes>,v1:<…>`. The first seals, all open; "
            "`<version>:derived` is a key derived from the secret key above. Unset: "
            "`v0:derived`. Rotate with `tidings secrets rotate` (docs/security.md)."
        ),
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of this service as recipients reach it; links in messages use it.",
    )
    console_session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="A console sign-in lasts this long at most (docs/console.md).",
    )
    console_idle_minutes: float = Field(
        default=60.0,
        gt=0,
        le=24 * 60 * 30,
        description="A console session ends after this long without a request.",
    )
    auto_migrate: bool = Field(
        default=True,
        description=(
            "Bring the database to the current schema when `tidings serve` or a CLI command "
            "starts (PostgreSQL runs it under an advisory lock, so replicas may start together)."
        ),
    )
    host: str = Field(default="127.0.0.1", description="Address `tidings serve` binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port `tidings serve` binds to.")
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    log_format: Literal["text", "json"] = Field(
        default="text",
        description=(
            "Tidings' own log lines on stderr: `text`, or `json` (one object per line, with "
            "the request id and the org, broadcast and message ids where they apply)."
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "Serves `/metrics` (Prometheus) to `Authorization: Bearer <token>`. Unset: "
            "`/metrics` answers 404."
        ),
    )
    dispatcher: bool = Field(
        default=True,
        description=(
            "Run a dispatcher inside `tidings serve`. Turn it off on API replicas when "
            "`tidings worker` processes send (PostgreSQL)."
        ),
    )
    dispatcher_batch_size: int = Field(
        default=2_000,
        ge=1,
        le=10_000,
        description=(
            "Messages a worker claims at a time. Larger batches spread each claim's and "
            "record's fixed cost over more messages; a crashed worker's batch may be sent "
            "twice."
        ),
    )
    dispatcher_lease_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description=(
            "The longest a claimed batch belongs to its worker, alive or not: a dead "
            "worker's batch is freed sooner, once it misses its heartbeats "
            "(`worker_dead_after_seconds`); a live one that holds a batch this long loses it."
        ),
    )
    worker_heartbeat_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description=(
            "How often a worker says it is alive (its row in `workers`), renews the "
            "connection slots it holds and looks for dead workers."
        ),
    )
    worker_dead_after_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3_600,
        description=(
            "A worker silent this long is dead: any live worker frees its claimed messages "
            "and its connection slots. Keep it several heartbeats long."
        ),
    )
    dispatcher_record_every: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description=(
            "Outcomes a worker writes at once, at most this many behind what the provider "
            "answered: a killed worker's messages that were answered but not yet written "
            "are the ones sent twice. Unset: 100 on PostgreSQL, 1,000 on SQLite (one "
            "writer at a time: each write takes the API's turn)."
        ),
    )
    dispatcher_record_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="The longest an outcome waits in memory before it is written.",
    )
    fallback_bounce_window_seconds: float = Field(
        default=86_400.0,
        ge=0,
        le=30 * 86_400,
        description=(
            "Cross-channel fallback: how long after a message was sent a hard bounce (a DSN) "
            "still sends its campaign's fallback on the other channel; 0 turns that off."
        ),
    )
    breaker_error_rate: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description=(
            "A connection's circuit breaker opens when at least this share of its attempts "
            "in the sliding window failed transiently (and there were at least "
            "`breaker_min_attempts`): every worker then skips it."
        ),
    )
    breaker_min_attempts: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="The fewest attempts in the window on which a breaker may open.",
    )
    breaker_window_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="The sliding window over which a connection's error rate is counted.",
    )
    breaker_open_seconds: float = Field(
        default=30.0,
        gt=0,
        le=86_400,
        description=(
            "How long an opened breaker keeps every worker off its connection; then it is "
            "half-open: a probe goes through, and closes it or opens it again."
        ),
    )
    breaker_probes: int = Field(
        default=1,
        ge=1,
        le=10_000,
        description="Messages each worker's batch sends through a half-open connection.",
    )

    outbound_allow: str = Field(
        default="",
        description=(
            "Networks and hosts on the operator's own network that tenants may make Tidings "
            "connect to (an SMTP relay on the LAN, an on-premise Kannel, a webhook receiver "
            "inside): comma-separated CIDR networks or single addresses (`10.0.0.0/8`, "
            "`192.168.1.20`, `fd00::/8`) and host names (`kannel.lan`). Everything else "
            "that is not public — loopback, private, link-local, CGNAT, cloud metadata — "
            "is refused. See docs/security.md."
        ),
    )
    webhook_allow_private: bool = Field(
        default=False,
        description=(
            "Deprecated, use `outbound_allow`: let webhook URLs (only them) reach "
            "loopback, private (RFC 1918, RFC 4193) and CGNAT addresses."
        ),
    )
    gc_threshold: int = Field(
        default=50_000,
        ge=0,
        description=(
            "Allocations between the garbage collector's youngest passes in `serve` and "
            "`worker` (0: Python's own, 700). Higher is faster and holds cycles longer; "
            "see tidings/runtime.py."
        ),
    )
    import_batch_size: int = Field(
        default=1_000, ge=1, le=10_000, description="Rows per transaction when importing CSV."
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest request body, in bytes, of every route but the CSV import: a larger one "
            "is answered 413 before it is parsed (10 MiB holds a 10,000-recipient send)."
        ),
    )
    max_import_bytes: int = Field(
        default=1024 * 1024 * 1024,
        ge=1024,
        description=(
            "Largest CSV file, in bytes, that `POST /v1/orgs/{org_id}/contacts/import` takes "
            "(it is spooled to a temporary file, not held in memory)."
        ),
    )
    soft_bounce_limit: int = Field(
        default=3,
        ge=1,
        le=100,
        description=(
            "Soft bounces in a row (no delivery between them) after which an address is "
            "suppressed with reason `soft_bounces`."
        ),
    )
    rejected_report_retention_days: float = Field(
        default=7.0,
        gt=0,
        le=3_650,
        description=(
            "How long refused delivery reports (`rejected_reports`: unsigned, badly signed, "
            "stale, malformed) are kept, and so counted by `GET …/reports/rejected`; older "
            "ones are deleted by the worker (see docs/reports.md)."
        ),
    )

    erasure_key: SecretStr | None = Field(
        default=None,
        description=(
            "Keys the hash (HMAC-SHA256) that keeps an erased person's address suppressed "
            "without keeping the address. Unset: derived from `TIDINGS_SECRET_KEY` (or the "
            "generated `secret.key`). Changing it lets the addresses of people erased before "
            "be sent to again; see docs/privacy.md."
        ),
    )
    retention_sweep_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description=(
            "How often the worker purges what each org's retention has expired (message "
            "content, events, message rows; docs/privacy.md); 0 turns purging off."
        ),
    )
    retention_batch_size: int = Field(
        default=1_000,
        ge=1,
        le=50_000,
        description=(
            "Rows the retention purge deletes or empties per transaction: small batches "
            "keep each write short, so sending goes on while a backlog is purged."
        ),
    )
    idempotency_keep_hours: float = Field(
        default=24.0,
        gt=0,
        le=24 * 30,
        description=(
            "How long an `Idempotency-Key` and its stored answer are kept: a retry with the "
            "same key within this time gets the first answer again (docs/api.md)."
        ),
    )
    idempotency_in_flight_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86_400,
        description=(
            "How long a request may hold an `Idempotency-Key` without finishing: a retry "
            "meanwhile is answered 409; after it, the request is taken for dead (its work "
            "never committed) and the retry runs it. Longer than any request runs."
        ),
    )

    smtp_helo_name: str | None = Field(
        default=None,
        description=(
            "The name SMTP connections give in EHLO, unless a connection sets its own "
            "`helo_name`: this host's fully qualified public name (mail.example.com) or an "
            "address literal ([192.0.2.1]). Unset: the host of TIDINGS_PUBLIC_URL when it "
            "is fully qualified, else this machine's name; a HELO that is not fully "
            "qualified is only sent to a server on loopback (docs/deliverability.md)."
        ),
    )

    bounce_poll_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description=(
            "How often the dispatcher reads the IMAP bounce mailboxes of SMTP connections "
            "(`bounce_imap`, see docs/bounces.md); 0 turns polling off."
        ),
    )

    @model_validator(mode="after")
    def _heartbeats_fit(self) -> Settings:
        if self.worker_dead_after_seconds < 2 * self.worker_heartbeat_seconds:
            raise ValueError(
                "worker_dead_after_seconds must be at least twice worker_heartbeat_seconds, "
                "or a live worker whose heartbeat is a little late is taken for dead"
            )
        return self

    @field_validator("smtp_helo_name")
    @classmethod
    def _helo_name(cls, value: str | None) -> str | None:
        return None if value is None else helo_name(value)

    @property
    def smtp_helo(self) -> str | None:
        """The EHLO name of connections that set none: `smtp_helo_name`, else the public
        URL's host when it is fully qualified; None leaves it to the machine's name."""
        return self.smtp_helo_name or fqdn_of_url(self.public_url)

    @field_validator("outbound_allow")
    @classmethod
    def _networks_and_hosts(cls, value: str) -> str:
        OutboundPolicy.parse(value)  # a bad entry stops the process at start-up
        return value

    @property
    def outbound_policy(self) -> OutboundPolicy:
        """Where connections (providers, SMTP and IMAP hosts) and webhooks may connect."""
        return OutboundPolicy.parse(self.outbound_allow)

    @property
    def webhook_policy(self) -> OutboundPolicy:
        """`outbound_policy`, widened by the deprecated `webhook_allow_private`."""
        policy = self.outbound_policy
        return policy.widened(PRIVATE_NETWORKS) if self.webhook_allow_private else policy

    @property
    def fallback_bounce_window(self) -> timedelta:
        return timedelta(seconds=self.fallback_bounce_window_seconds)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def record_every(self) -> int:
        """`dispatcher_record_every`, or the database's default when unset."""
        if self.dispatcher_record_every is not None:
            return self.dispatcher_record_every
        return 1_000 if self.is_sqlite else 100


def sqlite_path(database_url: str) -> Path | None:
    """The database file of an SQLite URL, or None for in-memory and other engines."""
    if not database_url.startswith("sqlite"):
        return None
    _, _, path = database_url.partition(":///")
    if not path or path.startswith(":memory:"):
        return None
    return Path(path.split("?", 1)[0])
