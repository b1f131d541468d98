from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import idna
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tidings.domains.dkim import Algorithm
from tidings.domains.status import KeyStatus

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_EXAMPLE: dict[str, Any] = {"name": "mail.example.com", "algorithm": "rsa"}


def domain_name(value: str) -> str:
    """A domain as stored: lower case, no final dot, IDNs as A-labels; at least two
    labels of letters, digits and inner hyphens, 253 characters at most."""
    name = value.strip().rstrip(".").lower()
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise ValueError("not a valid internationalised domain name") from None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise ValueError("a domain name such as mail.example.com (letters, digits, hyphens)")
    if labels[-1].isdigit():
        raise ValueError("a domain name, not an IP address")
    return name


def selector_name(value: str) -> str:
    """A DKIM selector: one or more DNS labels (RFC 6376 §3.1), lower case."""
    name = value.strip().lower()
    if len(name) > 63 or not all(_LABEL.match(label) for label in name.split(".")):
        raise ValueError("1-63 letters, digits and inner hyphens (dots between labels)")
    return name


_ALGORITHM = Field(
    default=Algorithm.RSA,
    description=(
        "`rsa` (RSA 2048, rsa-sha256: every verifier checks it) or `ed25519` (RFC 8463: "
        "small and fast, but not every receiver verifies it yet: add it beside an RSA key)."
    ),
)
_SELECTOR = Field(
    default=None,
    description="The DKIM selector; by default `tdg<yyyymmdd><r|e>` (a suffix if taken).",
)


class DomainCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=253, description="The From domain to sign for.")
    algorithm: Algorithm = _ALGORITHM
    selector: str | None = _SELECTOR
    include_subdomains: bool = Field(
        default=False,
        description="Also sign mail From any name below this domain (d= stays this domain).",
    )

    _name = field_validator("name")(domain_name)

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        return None if value is None else selector_name(value)


class KeyCreate(BaseModel):
    """A second key for rotation: `pending` until activated."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Algorithm = _ALGORITHM
    selector: str | None = _SELECTOR

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        return None if value is None else selector_name(value)


class DnsRecord(BaseModel):
    purpose: Literal["dkim", "spf", "dmarc"]
    type: Literal["TXT"] = "TXT"
    name: str = Field(description="The fully qualified name to publish the record at.")
    value: str = Field(description="The record's text, whole.")
    strings: list[str] = Field(
        description="The value cut into character-strings of at most 255 octets, as a "
        "zone file or a DNS console that does not split long values needs them."
    )
    key_id: int | None = Field(default=None, description="The key a DKIM record publishes.")
    note: str | None = None


class KeyOut(BaseModel):
    id: int
    selector: str
    algorithm: Algorithm
    status: KeyStatus = Field(
        description="`pending` (publish it, then activate), `active` (signs), `retired` "
        "(signs no more; delete it once mail signed with it is delivered: days)"
    )
    record: DnsRecord
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None


class DomainOut(BaseModel):
    id: int
    name: str
    include_subdomains: bool
    keys: list[KeyOut]
    records: list[DnsRecord] = Field(
        description="Every record to publish: each key's DKIM TXT, then SPF and DMARC hints."
    )
    created_at: datetime
    updated_at: datetime


class RecordCheck(BaseModel):
    record: DnsRecord
    status: Literal["ok", "missing", "different", "unknown"] = Field(
        description="`ok`: published as shown (SPF, DMARC: a record of that kind exists); "
        "`missing`: no such record; `different`: a record that is not this one; `unknown`: "
        "DNS could not be asked"
    )
    found: list[str] = Field(description="The TXT values found at the record's name.")


class DomainCheck(BaseModel):
    domain: str
    dns: Literal["reachable", "unreachable"]
    detail: str | None = Field(description="Why DNS could not be asked, when it could not.")
    checks: list[RecordCheck]
