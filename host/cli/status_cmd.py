"""`npc-host status`: consumers, pending entries and lag of every stream on the Redis hub.

Its own module so it imports only the hub and the profiles: no store, no brain, no model runtime.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import typer

from host.bus import StreamKind, make_bus, stream_name
from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.config import Settings

if TYPE_CHECKING:
    from rich.table import Table


@app.command("status")
def status(quiet: bool = typer.Option(False, "--quiet", help="print nothing; exit 0 when the hub answers")) -> None:
    """Consumers, pending entries and lag of every stream on the Redis hub."""
    settings = settings_or_exit()
    if settings.redis_url is None:
        fail("status reads the shared hub: set NPC_HOST_REDIS_URL (the in-process hub lives inside `npc-host run`)")
    if quiet:  # a health check: connecting (with its PING) is the answer; no profiles, no table
        run_or_exit(_hub_answers(settings))
        return
    from rich.console import Console

    Console().print(run_or_exit(_status_table(settings)))
    passes = run_or_exit(_advisor_passes(settings))
    if passes is not None:
        Console().print(passes)


async def _hub_answers(settings: Settings) -> None:
    bus = await make_bus(settings, client_name="npc-host-status")
    await bus.aclose()


async def _advisor_passes(settings: Settings) -> Table | None:
    """The advisor's latest passes (tokens, time, outcome, failure reason), if it ever ran. The store loads only
    here: `status --quiet` (a health check) never pays for it."""
    from host.cli.advisor_cmd import passes_table
    from host.store import Store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.effective_database_url)
    try:
        passes = await store.advisor.recent_passes(limit=10)
    finally:
        await store.close()
    return passes_table(passes) if passes else None


async def _status_table(settings: Settings) -> Table:
    from rich.table import Table  # rich and the profiles load only when there is a table to print

    from host.profiles.loader import load_all

    bus = await make_bus(settings, client_name="npc-host-status")
    table = Table("stream", "length", "group", "consumers", "pending", "lag", "dead letters")
    try:
        for load in await asyncio.to_thread(load_all, settings.profiles_dir):  # parsing files: off the event loop
            if load.server is None:
                continue
            for kind in StreamKind:
                info = await bus.stream_info(stream_name(load.server.name, kind))
                if not info.groups:
                    table.add_row(info.stream, str(info.length), "-", "-", "-", "-", str(info.dead_letters))
                for group in info.groups:
                    consumers = ", ".join(f"{c.name} ({c.pending})" for c in group.consumers) or "-"
                    lag = "?" if group.lag is None else str(group.lag)
                    table.add_row(
                        info.stream,
                        str(info.length),
                        group.name,
                        consumers,
                        str(group.pending),
                        lag,
                        str(info.dead_letters),
                    )
    finally:
        await bus.aclose()
    return table
