from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.keys import service
from tidings.keys.models import ApiKey
from tidings.keys.schemas import ApiKeyCreate, ApiKeyIssued, ApiKeyOut, audited

router = APIRouter(prefix="/orgs/{org_id}/keys", tags=["keys"], route_class=IdempotentRoute)


def _out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut.model_validate(
        {
            **{c: getattr(key, c) for c in ApiKeyOut.model_fields},
            "scopes": service.parse_scopes(key.scopes),
        }
    )


@router.get("", summary="List the org's API keys (never their secrets)")
async def list_keys(org_id: Id, key: ReadKey, session: SessionDep) -> list[ApiKeyOut]:
    return [_out(k) for k in await service.list_keys(session, org_id=key.org_id)]


@router.post(
    "",
    status_code=201,
    summary="Issue a key; its secret is in this response only",
    dependencies=[IDEMPOTENT],
)
async def create_key(
    org_id: Id, body: ApiKeyCreate, key: ManageKey, session: WriteSessionDep
) -> ApiKeyIssued:
    issued = await service.create_key(
        session, org_id=key.org_id, name=body.name, kind=body.kind, scopes=body.scopes, issuer=key
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.KEY_CREATE,
        target_id=issued.key.id,
        changes=diff(None, audited(issued.key)),
    )
    return ApiKeyIssued(**_out(issued.key).model_dump(), api_key=issued.secret)


@router.delete("/{key_id}", summary="Revoke a key (it stops working at once)")
async def revoke_key(org_id: Id, key_id: Id, key: ManageKey, session: WriteSessionDep) -> ApiKeyOut:
    revoked = await service.revoke_key(session, org_id=key.org_id, key_id=key_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.KEY_REVOKE,
        target_id=key_id,
        # `to` only: revoking twice keeps the first time, so "from null" could be untrue.
        changes=diff({}, {"revoked_at": audited(revoked)["revoked_at"]}),
    )
    return _out(revoked)
