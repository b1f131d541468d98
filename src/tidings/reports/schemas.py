from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class ReportsOut(BaseModel):
    accepted: int
    stale: int
    pending: int  # about a provider id not recorded yet: applied when it is (reports.md)


class RejectedCountOut(BaseModel):
    source: str
    reason: str
    count: int
    last_at: datetime


class RejectedReportsOut(BaseModel):
    total: int
    data: list[RejectedCountOut]
