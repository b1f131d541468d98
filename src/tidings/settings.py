"""Configuration: one pydantic-settings class, read from `TIDINGS_*` environment variables.

Build it once at an entry point (`create_app`, the CLI) and pass it down; nothing else
reads the environment. `docs/settings.md` is the reference and must follow this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of this service as recipients reach it; links in messages use it.",
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
            "How long a claimed batch belongs to its worker. A worker that dies holds its "
            "batch this long; then any worker sends it again."
        ),
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

    bounce_poll_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        description=(
            "How often the dispatcher reads the IMAP bounce mailboxes of SMTP connections "
            "(`bounce_imap`, see docs/bounces.md); 0 turns polling off."
        ),
    )

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
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def sqlite_path(database_url: str) -> Path | None:
    """The database file of an SQLite URL, or None for in-memory and other engines."""
    if not database_url.startswith("sqlite"):
        return None
    _, _, path = database_url.partition(":///")
    if not path or path.startswith(":memory:"):
        return None
    return Path(path.split("?", 1)[0])
