"""Signing in and out, and an operator's choice of org.

    GET  /login          the form (a signed-in member goes on to `next`)
    POST /login          email + password → a session cookie, then `next` (rate-limited:
                         members/limits.py; 429 with Retry-After)
    POST /logout         ends the session
    POST /switch-org     an operator shows another org

Before a session exists, the sign-in form's CSRF token is a random value in a cookie of
its own (`tidings_login`), which the form repeats (a double-submit token): another site
cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Form, Request, Response

from tidings.api.deps import DatabaseDep, SettingsDep
from tidings.console.deps import (
    SESSION_COOKIE,
    Viewer,
    ViewerDep,
    csrf_refused,
    find_viewer,
    lifetimes,
    same_token,
)
from tidings.console.pages import local_path, redirect, render
from tidings.console.routing import page_router, public_router
from tidings.errors import Forbidden, Unauthorized
from tidings.members import limits, sessions
from tidings.members import service as members
from tidings.settings import Settings

LOGIN_COOKIE = "tidings_login"

router = public_router()
guarded = page_router()  # included at the end of the module


def secure_cookies(settings: Settings) -> bool:
    """Cookies are `Secure` when the console is reached over https (`public_url`)."""
    return settings.public_url.lower().startswith("https://")


def _login_form(
    request: Request,
    settings: Settings,
    *,
    next_path: str,
    email: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, "login.html", None, status_code=status_code, csrf_token=token,
                      next=next_path, email=email, error=error)  # fmt: skip
    response.set_cookie(LOGIN_COOKIE, token, path="/", httponly=True, samesite="lax",
                        secure=secure_cookies(settings))  # fmt: skip
    return response


@router.get("/login")
async def login_page(
    request: Request,
    settings: SettingsDep,
    viewer: Annotated[Viewer | None, Depends(find_viewer)],
    next: str | None = None,
) -> Response:
    if viewer is not None:
        return redirect(local_path(next))
    return _login_form(request, settings, next_path=local_path(next))


@router.post("/login")
async def login(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    if not same_token(csrf_token, request.cookies.get(LOGIN_COOKIE, "")):
        raise csrf_refused()
    address = request.client.host if request.client else "unknown"
    form = {"next_path": local_path(next), "email": email}
    try:
        async with db.transaction(write=False) as session:
            limited = await limits.blocked(session, email=email, address=address)
            if limited is not None:
                refused = _login_form(request, settings, **form, error=limited.message,
                                      status_code=429)  # fmt: skip
                refused.headers["Retry-After"] = str(limited.retry_after)
                return refused
            member = await members.check_sign_in(session, email=email, password=password)
    except Unauthorized:
        async with db.transaction() as session:
            await limits.record_failure(session, email=email, address=address)
        return _login_form(request, settings, **form, error="Wrong email or password.",
                           status_code=401)  # fmt: skip
    async with db.transaction() as session:
        await limits.clear(session, email=email)
        await members.record_sign_in(session, member_id=member.id)
        issued = sessions.open_session(session, member=member, lifetimes=lifetimes(settings))
    response = redirect(local_path(next))
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=int(lifetimes(settings).lifetime.total_seconds()),
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure_cookies(settings),
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@guarded.post("/logout")
async def logout(viewer: ViewerDep, db: DatabaseDep) -> Response:
    async with db.transaction() as session:
        await sessions.revoke(session, session_id=viewer.session_id)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@guarded.post("/switch-org")
async def switch_org(
    viewer: ViewerDep, db: DatabaseDep, org_id: Annotated[int, Form(ge=1, lt=2**63)]
) -> Response:
    if not viewer.is_operator:
        raise Forbidden("only an operator switches between orgs")
    async with db.transaction() as session:
        org = await sessions.show_org(session, session_id=viewer.session_id, org_id=org_id)
    return redirect("/", viewer, flash=f"Now showing {org.name} ({org.login})")


router.include_router(guarded)
