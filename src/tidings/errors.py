"""The domain's exceptions. Services raise these; each entry point maps them to its own shape
(`tidings.api.problems` to RFC 9457 problem+json, the CLI to a message and exit code).

    TidingsError
    ├── InvalidInput        422 — one or more FieldErrors, each naming the field (and index)
    │   └── KeyReused       422 — an Idempotency-Key already used for another request
    ├── NotFound            404 — absent, or belongs to another org (never say which)
    ├── Conflict            409 — not possible in the object's current state
    ├── InsufficientCredit  402 — the org's credit balance cannot cover a send
    ├── Unauthorized        401 — missing or invalid credentials
    ├── Forbidden           403 — valid credentials, wrong org or missing scope
    ├── TooLarge            413 — a request body over the size limit (`api/body.py`)
    └── UnsupportedMedia    415 — a request body of a type no route reads
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    """What is wrong with one field. `index` is the row's position in a batch, if any."""

    field: str
    reason: str
    index: int | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"field": self.field, "reason": self.reason}
        if self.index is not None:
            data["index"] = self.index
        return data


class TidingsError(Exception):
    """`slug` names the problem type: `urn:tidings:problem:<slug>` (stable; clients match it)."""

    status = 500
    title = "Internal error"
    slug = "internal-error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(TidingsError):
    status = 422
    title = "Invalid input"
    slug = "invalid-input"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = errors

    @classmethod
    def field(cls, field: str, reason: str) -> InvalidInput:
        return cls([FieldError(field, reason)])

    @classmethod
    def unless_known(
        cls, field: str, what: str, ids: Sequence[int], known: Collection[int]
    ) -> None:
        """Raise one naming each of `ids` not in `known`, by its index (`field[i]`)."""
        missing = [
            FieldError(f"{field}[{i}]", f"{what} {ident} does not exist", i)
            for i, ident in enumerate(ids)
            if ident not in known
        ]
        if missing:
            raise cls(missing)


class KeyReused(InvalidInput):
    """Its own problem type, so that a client (and a dialect) tells it from bad input:
    the request may be fine, the key is not."""

    title = "Idempotency-Key reused"
    slug = "idempotency-key-reused"

    def __init__(self) -> None:
        super().__init__(
            [
                FieldError(
                    "Idempotency-Key",
                    "already used for another request (another body, or another API key)",
                )
            ]
        )


class NotFound(TidingsError):
    status = 404
    title = "Not found"
    slug = "not-found"

    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"{what} {ident} does not exist")


class Conflict(TidingsError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class Unauthorized(TidingsError):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"


class Forbidden(TidingsError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class InsufficientCredit(TidingsError):
    """Raised inside the send's transaction: the caller rolls back, so nothing is queued."""

    status = 402
    title = "Insufficient credit"
    slug = "insufficient-credit"

    def __init__(self, *, needed: int, balance: int) -> None:
        super().__init__(
            f"this send costs {needed / 1_000_000:g} credits; the balance is "
            f"{balance / 1_000_000:g}"
        )
        self.needed = needed
        self.balance = balance


class TooLarge(TidingsError):
    status = 413
    title = "Payload too large"
    slug = "too-large"


class UnsupportedMedia(TidingsError):
    status = 415
    title = "Unsupported media type"
    slug = "unsupported-media-type"
