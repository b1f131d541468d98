"""The API shapes of credits and prices. Amounts are credits (1 credit = 1,000,000
micro-credits, the unit stored): numbers with at most 6 decimals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tidings.api.pagination import Page
from tidings.credits.models import CreditEntry, Price

MICRO = 1_000_000
Credits = Annotated[Decimal, Field(max_digits=18, decimal_places=6)]


def to_micro(amount: Decimal) -> int:
    return int(amount * MICRO)


def to_credits(micro: int) -> float:
    return micro / MICRO


class TopUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Annotated[Credits, Field(gt=0, description="Credits to add, e.g. 100 or 2.5.")]
    note: Annotated[str | None, Field(max_length=200)] = None


class CreditEntryOut(BaseModel):
    id: int
    amount: float = Field(description="Credits: + top-up or release, − reservation.")
    kind: str = Field(description="top-up, reserve or release.")
    reference: str | None = Field(description="What moved it, e.g. message:12, broadcast:3.")
    note: str | None
    balance_after: float
    created_at: datetime

    @classmethod
    def of(cls, entry: CreditEntry) -> CreditEntryOut:
        return cls(
            id=entry.id,
            amount=to_credits(entry.amount),
            kind=entry.kind,
            reference=entry.reference,
            note=entry.note,
            balance_after=to_credits(entry.balance_after),
            created_at=entry.created_at,
        )


class CreditsOut(BaseModel):
    balance: float = Field(description="Credits available now.")
    entries: Page[CreditEntryOut] = Field(description="The ledger, newest first.")


class PriceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Literal["email", "sms"]
    country: Annotated[
        str,
        Field(
            pattern=r"^(\*|[A-Z]{2})$",
            description='SMS: an ISO 3166-1 alpha-2 destination, or "*" for any other. Email: "*".',
        ),
    ] = "*"
    amount: Annotated[Credits, Field(ge=0, description="Credits per email, or per SMS segment.")]


class PriceOut(BaseModel):
    channel: str
    country: str
    amount: float

    @classmethod
    def of(cls, price: Price) -> PriceOut:
        return cls(channel=price.channel, country=price.country, amount=to_credits(price.amount))


class PricesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prices: Annotated[list[PriceIn], Field(max_length=500)]


class PricesOut(BaseModel):
    prices: list[PriceOut] = Field(description="No row for a channel: sending on it is free.")
