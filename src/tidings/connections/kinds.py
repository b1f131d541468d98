"""Validating a connection's settings and credentials against its kind.

Settings are readable back through the API; credentials are write-only (stored, used,
never returned). Each kind validates both, so a typo is a 422 naming the field, not a
failure at send time. The kinds and their schemas are declared by the provider modules
(`channels/<kind>.py`, `PROVIDER`), listed in `channels/registry.py`.

Every host a connection's settings make Tidings connect to (the kind's `addresses`: a
gateway URL, an SMTP host, an IMAP bounce mailbox) is vetted against the operator's
outbound policy by `check_addresses` (`tidings.net.ssrf`): the caller runs it before its
write transaction, as it resolves names; the channel vets again when it connects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from tidings.channels.registry import PROVIDERS
from tidings.errors import FieldError, InvalidInput
from tidings.net.ssrf import OutboundPolicy, Resolver, Unresolved, UnsafeURL


def validated(
    kind: str, channel: str, settings: dict[str, Any], credentials: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both documents checked against the kind (JSON-ready), or InvalidInput naming fields."""
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
                reason = err["msg"] if prefix == "settings" else err["type"].replace("_", " ")
                errors.append(FieldError(f"{prefix}.{where}" if where else prefix, reason))
    if errors:
        raise InvalidInput(errors)
    return checked[0], checked[1]


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
