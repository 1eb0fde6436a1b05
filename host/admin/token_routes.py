"""Per-server voice bridge tokens, for admins only: see who set the standing one and when, set a new one (the host
generates it and answers it this once; only its salted hash is stored), or revoke it.

The gateway's bridge takes a plugin whose hello carries this token or the one in the environment variable the
server's `[bridge]` names; a new or revoked token applies to new connections within a second, with no restart
(host/roles/bridge_tokens.py). Connected plugins stay connected.
"""

from __future__ import annotations

import logging
from datetime import datetime

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from host.admin.auth import Admin
from host.admin.context import AdminContext
from host.admin.live_routes import known_server

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/servers/{server}/bridge-token", tags=["bridge tokens"])


class TokenView(BaseModel):
    server: str
    bridge: bool = Field(description="the server's profile has a [bridge] section (plugins may connect at all)")
    token_env: str | None = Field(description="the environment variable whose token the bridge also takes")
    set_by: str | None = Field(description="who set the standing token; null when none stands")
    set_at: datetime | None
    revoked_by: str | None = Field(None, description="who revoked the last token, when none stands")
    revoked_at: datetime | None = None


class NewToken(TokenView):
    token: str = Field(description="the new token: shown this once, never again; put it in the plugin's config")


async def _view(context: AdminContext, server: str) -> TokenView:
    bridge = context.services.registry.server(server).bridge
    status_ = await context.services.store.bridge_tokens.status(server)
    return TokenView(
        server=server,
        bridge=bridge is not None,
        token_env=bridge.token_env if bridge is not None else None,
        **status_.model_dump(exclude={"server"}),
    )


@router.get("", response_model=TokenView, summary="Who set the server's bridge token and when (never the token)")
async def token_status(server: str, request: Request, _: Admin) -> TokenView:
    context = AdminContext.of(request)
    return await _view(context, known_server(context, server))


@router.post(
    "",
    response_model=NewToken,
    status_code=status.HTTP_201_CREATED,
    summary="Set a new bridge token (revoking the standing one); the answer is the only time it is shown",
)
async def rotate(server: str, request: Request, session: Admin) -> NewToken:
    context = AdminContext.of(request)
    known_server(context, server)
    if context.services.registry.server(server).bridge is None:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"server {server!r} has no [bridge] section in its server.toml: no plugin connects to it, so it takes "
            "no token; add [bridge] with token_env first",
        )
    token = await context.services.store.bridge_tokens.issue(server, by=session.user)
    log.info("%s set a new bridge token for server '%s'", session.user, server)
    view = await _view(context, server)
    return NewToken(token=token, **view.model_dump())


@router.delete("", response_model=TokenView, summary="Revoke the server's bridge token set here")
async def revoke(server: str, request: Request, session: Admin) -> TokenView:
    context = AdminContext.of(request)
    known_server(context, server)
    if not await context.services.store.bridge_tokens.revoke(server, by=session.user):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"server {server!r} has no bridge token set on this page")
    log.info("%s revoked the bridge token of server '%s'", session.user, server)
    return await _view(context, server)
