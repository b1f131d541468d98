"""The domain's exceptions. Services raise these; each entry point maps them to its own shape
(`tidings.api.problems` to RFC 9457 problem+json, the CLI to a message and exit code).

    TidingsError
    ├── InvalidInput        422 — one or more FieldErrors, each naming the field (and index)
    ├── NotFound            404 — absent, or belongs to another org (never say which)
    ├── Conflict            409 — the request collides with the current state
    ├── Unauthorized        401 — missing or invalid credentials
    └── Forbidden           403 — valid credentials, wrong org or missing scope
"""

from __future__ import annotations

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
    status = 500
    title = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(TidingsError):
    status = 422
    title = "Invalid input"

    def __init__(self, errors: list[FieldError], detail: str | None = None) -> None:
        super().__init__(detail or "; ".join(f"{e.field}: {e.reason}" for e in errors))
        self.errors = errors

    @classmethod
    def field(cls, field: str, reason: str) -> InvalidInput:
        return cls([FieldError(field, reason)])


class NotFound(TidingsError):
    status = 404
    title = "Not found"

    def __init__(self, what: str, ident: object) -> None:
        super().__init__(f"{what} {ident} does not exist")


class Conflict(TidingsError):
    status = 409
    title = "Conflict"


class Unauthorized(TidingsError):
    status = 401
    title = "Unauthorized"


class Forbidden(TidingsError):
    status = 403
    title = "Forbidden"
