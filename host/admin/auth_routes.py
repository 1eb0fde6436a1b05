"""Signing in and out, who is signed in, and the admin's user list."""

from __future__ import annotations

import logging
import math

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from host.admin.auth import COOKIE, Admin, SignedIn, Viewer
from host.admin.context import AdminContext
from host.admin.refusals import client_address
from host.admin.sessions import Role
from host.store import ConflictError, NewAdminUser

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["auth"])


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    password: SecretStr = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    name: str
    role: Role
    csrf_token: str = Field(description="send it back in the X-CSRF-Token header of every change")


class UserOut(BaseModel):
    name: str
    role: Role
    last_login_at: str | None


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: SecretStr = Field(min_length=8, max_length=1024)
    role: Role = "viewer"


@router.post("/session", response_model=Me, summary="Sign in")
async def sign_in(body: SignIn, request: Request, response: Response) -> Me:
    context = AdminContext.of(request)
    address = client_address(request)
    wait = context.limiter.retry_after(body.name, address)
    if wait > 0:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed sign-ins; try again in {math.ceil(wait)} s",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    user = await context.services.store.admin_users.verify(body.name, body.password)
    if user is None:
        context.limiter.failed(body.name, address)
        log.warning("failed sign-in as %r from %s", body.name, address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong name or password")
    session = await context.sessions.open(user.name)
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=int(context.sessions.lifetime_s),
        httponly=True,
        samesite="strict",
        secure=context.services.settings.admin_secure_cookie,
        path="/",
    )
    log.info("%s signed in (%s) from %s", user.name, user.role, address)
    return Me(name=session.user, role=session.role, csrf_token=session.csrf)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT, summary="Sign out")
async def sign_out(request: Request, response: Response, session: SignedIn) -> None:
    await AdminContext.of(request).sessions.close(session.token)
    response.delete_cookie(COOKIE, path="/")


@router.get("/me", response_model=Me, summary="Who is signed in, and the CSRF token for changes")
async def me(session: Viewer) -> Me:
    return Me(name=session.user, role=session.role, csrf_token=session.csrf)


@router.get("/users", response_model=list[UserOut], summary="The admin page's users")
async def users(request: Request, _: Admin) -> list[UserOut]:
    found = await AdminContext.of(request).services.store.admin_users.all_users()
    return [
        UserOut(name=u.name, role=u.role, last_login_at=u.last_login_at.isoformat() if u.last_login_at else None)
        for u in found
    ]


@router.post("/users", response_model=UserOut, status_code=status.HTTP_201_CREATED, summary="Add a user")
async def add_user(body: NewUser, request: Request, session: Admin) -> UserOut:
    store = AdminContext.of(request).services.store
    try:
        user = await store.admin_users.create(NewAdminUser(name=body.name, password=body.password, role=body.role))
    except ConflictError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, exc.message) from None
    log.info("%s added user %s (%s)", session.user, user.name, user.role)
    return UserOut(name=user.name, role=user.role, last_login_at=None)
