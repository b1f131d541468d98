"""The providers a connection can be, with the settings and credentials each one takes.

Settings are readable back through the API; credentials are write-only (stored, used,
never returned). Each kind validates both, so a typo is a 422 naming the field, not a
failure at send time.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError

from tidings.errors import FieldError, InvalidInput


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoSettings(_Strict):
    pass


class _SmsCredentials(_Strict):
    inbound_token: str | None = Field(
        default=None,
        min_length=24,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description=(
            "Secret of the inbound SMS URL /inbound/sms/{connection_id}/{inbound_token} "
            "and of the report URLs /reports/{connection_id}/kannel|infobip/{inbound_token}"
        ),
    )
    report_secret: str | None = Field(
        default=None,
        pattern=r"^whsec_[A-Za-z0-9+/]{32,}={0,2}$",
        description="Standard Webhooks secret of generic reports to /reports/{connection_id}/json",
    )


class BounceImapSettings(_Strict):
    """The mailbox bounces and complaints arrive in; polled, see docs/bounces.md."""

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str = Field(min_length=1, max_length=255)
    mailbox: str = Field(default="INBOX", min_length=1, max_length=255)
    validate_certs: bool = True


class SmtpSettingsIn(_Strict):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    pool_size: int = Field(default=4, ge=1, le=64)
    timeout: float = Field(default=30.0, gt=0, le=300)
    validate_certs: bool = True
    pipelining: bool = Field(default=True, description="RFC 2920, where the server offers it")
    pushback_seconds: float = Field(
        default=60.0, ge=0, le=3600, description="How long a 421 stops the connection (0: never)"
    )
    bounce_imap: BounceImapSettings | None = Field(
        default=None, description="An IMAP mailbox of DSNs and ARF reports to poll"
    )


class SmtpCredentials(_Strict):
    username: str | None = None
    password: str | None = None
    report_secret: str | None = Field(
        default=None,
        pattern=r"^whsec_[A-Za-z0-9+/]{32,}={0,2}$",
        description="Standard Webhooks secret of generic reports to /reports/{connection_id}/json",
    )
    bounce_token: str | None = Field(
        default=None,
        min_length=24,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Secret of the bounce URL /bounces/{connection_id}/{bounce_token}",
    )
    bounce_imap_password: str | None = Field(default=None, description="For bounce_imap")


class HttpSmsSettingsIn(_Strict):
    url: HttpUrl
    method: Literal["POST", "PUT"] = "POST"
    body: dict[str, Any] = Field(
        description="JSON body; strings may hold {to}, {to_digits}, {text}, {sender}, {message_id}"
    )
    id_path: str | None = Field(default=None, description="Dotted path of the provider's id")


class HttpSmsCredentials(_SmsCredentials):
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. Authorization")


class KannelSettingsIn(_Strict):
    base_url: HttpUrl
    dlr_url: str | None = Field(default=None, description="{message_id} is substituted")


class KannelCredentials(_SmsCredentials):
    username: str
    password: str


class InfobipSettingsIn(_Strict):
    base_url: HttpUrl
    batch_size: int = Field(default=100, ge=1, le=1000)


class InfobipCredentials(_SmsCredentials):
    api_key: str = Field(min_length=1)


class TwilioSettingsIn(_Strict):
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    base_url: HttpUrl = HttpUrl("https://api.twilio.com")
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None


class TwilioCredentials(_SmsCredentials):
    auth_token: str = Field(min_length=1)


class SinkCredentials(_SmsCredentials):
    pass


# kind → (channels it serves, settings model, credentials model)
KINDS: dict[str, tuple[frozenset[str], type[_Strict], type[_Strict]]] = {
    "sink": (frozenset({"email", "sms"}), NoSettings, SinkCredentials),
    "smtp": (frozenset({"email"}), SmtpSettingsIn, SmtpCredentials),
    "http_sms": (frozenset({"sms"}), HttpSmsSettingsIn, HttpSmsCredentials),
    "kannel": (frozenset({"sms"}), KannelSettingsIn, KannelCredentials),
    "infobip": (frozenset({"sms"}), InfobipSettingsIn, InfobipCredentials),
    "twilio": (frozenset({"sms"}), TwilioSettingsIn, TwilioCredentials),
}


def validated(
    kind: str, channel: str, settings: dict[str, Any], credentials: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both documents checked against the kind (JSON-ready), or InvalidInput naming fields."""
    if kind not in KINDS:
        raise InvalidInput.field("kind", f"one of {', '.join(sorted(KINDS))}")
    channels, settings_model, credentials_model = KINDS[kind]
    if channel not in channels:
        raise InvalidInput.field(
            "channel", f"a {kind} connection sends {'/'.join(sorted(channels))}"
        )
    errors: list[FieldError] = []
    checked: list[dict[str, Any]] = []
    for prefix, model, raw in (
        ("settings", settings_model, settings),
        ("credentials", credentials_model, credentials),
    ):
        try:
            checked.append(model.model_validate(raw).model_dump(mode="json", exclude_none=True))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"])
                # A credential's value never goes into an error message.
                reason = err["msg"] if prefix == "settings" else err["type"].replace("_", " ")
                errors.append(FieldError(f"{prefix}.{where}" if where else prefix, reason))
    if errors:
        raise InvalidInput(errors)
    return checked[0], checked[1]
