"""The players' voice page (`voice_router`) and the table's game-master map and API (`table_router`), for the admin
app; `player_voice_routers` builds both from the process's services."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, params

from host.admin.voice.routes import voice_router
from host.admin.voice.table_routes import table_router
from host.bus.streams import stream_for
from host.events import Event
from host.invites import InviteSigner, invite_secret
from host.roles.services import HostServices

__all__ = ["player_voice_routers", "table_router", "voice_router"]


def player_voice_routers(services: HostServices, operator: Sequence[params.Depends]) -> list[APIRouter]:
    """The voice page (open to anyone: its invite is its key) and the table map and API (behind `operator`)."""

    async def publish(event: Event) -> None:
        await services.bus.publish(stream_for(event), event)

    settings = services.settings
    signer = InviteSigner(invite_secret(settings.voice_page.invite_secret))
    return [voice_router(settings), table_router(services.registry, publish, signer, operator)]
