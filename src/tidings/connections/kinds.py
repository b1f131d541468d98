"""Validating a connection's settings and credentials against its kind.

Settings are readable back through the API; credentials are write-only (stored, used,
never returned). Each kind validates both, so a typo is a 422 naming the field, not a
failure at send time. The kinds and their schemas are declared by the provider modules
(`channels/<kind>.py`, `PROVIDER`), listed in `channels/registry.py`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tidings.channels.registry import PROVIDERS
from tidings.errors import FieldError, InvalidInput


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


def kinds_text() -> str:
    """Every kind in one phrase, `a, b or c`, for the API's description of `kind`."""
    kinds = list(PROVIDERS)
    return f"{', '.join(kinds[:-1])} or {kinds[-1]}"
