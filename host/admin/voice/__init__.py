"""The players' voice page (`voice_router`) and the table's game-master map and API (`table_router`), for the admin
app; `player_voice_routers` builds both from the process's services."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fastapi import APIRouter, params

from host.admin.voice.routes import voice_router
from host.admin.voice.table_routes import TableServices, table_router
from host.bus.streams import stream_for
from host.events import Event
from host.invites import InviteSigner, invite_secret
from host.roles.services import HostServices

__all__ = ["TableServices", "player_voice_routers", "table_router", "voice_router"]


def player_voice_routers(services: Callable[[], HostServices], operator: Sequence[params.Depends]) -> list[APIRouter]:
    """The voice page (open to anyone: its invite is its key) and the table map and API (behind `operator`).
    `services` is called per request: the admin app builds its routes before its services exist."""

    def table() -> TableServices:
        current = services()

        async def publish(event: Event) -> None:
            await current.bus.publish(stream_for(event), event)

        signer = InviteSigner(invite_secret(current.settings.voice_page.invite_secret))
        return TableServices(current.registry, publish, signer)

    return [voice_router(lambda: services().settings), table_router(table, operator)]
