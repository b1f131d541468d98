"""Validating a connection's settings and credentials against its kind.

Settings are readable back through the API; credentials are write-only (stored, used,
never returned) and sealed at rest. A setting a kind declares secret (`Schema.secret`:
a gateway's body template that carries its key) is written with the settings and stored
with the credentials, so it is hidden and sealed like them; a credential a kind
generates (`Provider.generated`: Kannel's report token) is made here when absent. Each
kind validates both, so a typo is a 422 naming the field, not a failure at send time.
The kinds and their schemas are declared by the provider modules
(`channels/<kind>.py`, `PROVIDER`), listed in `channels/registry.py`.

Every host a connection's settings make Tidings connect to (the kind's `addresses`: a
gateway URL, an SMTP host, an IMAP bounce mailbox) is vetted against the operator's
outbound policy by `check_addresses` (`tidings.net.ssrf`): the caller runs it before its
write transaction, as it resolves names; the channel vets again when it connects.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tidings.channels.registry import PROVIDERS
from tidings.errors import FieldError, InvalidInput
from tidings.net.ssrf import OutboundPolicy, Resolver, Unresolved, UnsafeURL


def validated(
    kind: str,
    channel: str,
    settings: dict[str, Any],
    credentials: dict[str, Any],
    *,
    stored: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both documents as written checked against the kind, or InvalidInput naming fields;
    returned as stored (JSON-ready): the secret settings moved to the credentials, the
    generated credentials made, or kept from the `stored` credentials of a change (a
    report URL in flight stays valid)."""
    if kind not in PROVIDERS:
        raise InvalidInput.field("kind", f"one of {', '.join(sorted(PROVIDERS))}")
    provider = PROVIDERS[kind]
    channels = provider.channels
    if channel not in channels:
        raise InvalidInput.field(
            "channel", f"a {kind} connection sends {'/'.join(sorted(channels))}"
        )
    errors: list[FieldError] = []
    checked: list[dict[str, Any]] = []
    for prefix, model, raw in (
        ("settings", provider.settings, settings),
        ("credentials", provider.credentials, credentials),
    ):
        try:
            checked.append(model.model_validate(raw).model_dump(mode="json", exclude_none=True))
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                where = ".".join(str(p) for p in err["loc"])
                # A credential's value never goes into an error message.
                secret = prefix == "credentials" or str(err["loc"][0]) in model.secret
                reason = err["type"].replace("_", " ") if secret else err["msg"]
                errors.append(FieldError(f"{prefix}.{where}" if where else prefix, reason))
    if errors:
        raise InvalidInput(errors)
    readable, hidden = checked
    for name in provider.settings.secret:
        if name in readable:
            hidden[name] = readable.pop(name)
    for name in provider.generated:
        if name not in hidden:
            kept = (stored or {}).get(name)
            hidden[name] = kept if isinstance(kept, str) else secrets.token_urlsafe(32)
    return readable, hidden


def as_written(
    kind: str, settings: dict[str, Any], credentials: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The stored documents as the API writes them (the secret settings back in the
    settings): what a change that leaves one of them out keeps."""
    secret = PROVIDERS[kind].settings.secret
    written = {**settings, **{k: v for k, v in credentials.items() if k in secret}}
    return written, {k: v for k, v in credentials.items() if k not in secret}


async def check_addresses(
    kind: str,
    settings: Mapping[str, Any],
    *,
    policy: OutboundPolicy,
    resolver: Resolver | None = None,
) -> None:
    """InvalidInput naming each settings field (`settings.url`, `settings.host`,
    `settings.bounce_imap.host`) whose host the policy refuses. A name that does not
    resolve (yet: a provider's DNS may be down, an internal name may only resolve where
    the workers run) is accepted: it reaches nothing now, and is vetted whenever Tidings
    connects. Settings the kind does not accept are left to `validated`, which names
    their fields."""
    provider = PROVIDERS.get(kind)
    if provider is None:
        return
    try:
        checked = provider.settings.model_validate(dict(settings))
    except ValidationError:
        return
    addresses = provider.addresses(checked)

    async def refusal(host: str, port: int) -> str | None:
        try:
            await policy.vet(host, port, resolver=resolver)
        except Unresolved:
            return None
        except UnsafeURL as exc:
            return f"refused: {exc.reason}"
        return None

    reasons = await asyncio.gather(*(refusal(a.host, a.port) for a in addresses))
    errors = [
        FieldError(f"settings.{a.field}", reason)
        for a, reason in zip(addresses, reasons, strict=True)
        if reason is not None
    ]
    if errors:
        raise InvalidInput(errors)


def kinds_text() -> str:
    """Every kind in one phrase, `a, b or c`, for the API's description of `kind`."""
    kinds = list(PROVIDERS)
    return f"{', '.join(kinds[:-1])} or {kinds[-1]}"
