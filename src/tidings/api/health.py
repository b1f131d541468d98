"""Liveness (`/healthz`: the process answers) and readiness (`/readyz`: database reachable
and migrated to the head revision this code expects)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from tidings.api.deps import DatabaseDep
from tidings.db import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: database reachable and migrated")
async def readyz(db: DatabaseDep) -> JSONResponse:
    expected = migrate.head()
    try:
        found = await migrate.current(db.engine)
    except (SQLAlchemyError, OSError) as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, status_code=503)
    if found != expected:
        body = {"status": "unavailable", "database": f"at revision {found}, expected {expected}"}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok", "database": db.dialect, "revision": found})
