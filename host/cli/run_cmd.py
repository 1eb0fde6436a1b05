"""`npc-host run` (the host's roles) and `npc-host status` (each process's roles and their health; the hub's
consumers, pending entries and lag)."""

from __future__ import annotations

import asyncio
import os
import time

import typer
from rich.console import Console
from rich.table import Table

from host.bus import Bus, StreamKind, make_bus, stream_name
from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.config import Settings
from host.errors import NpcHostError
from host.logs import profile_secret_envs, setup_logging
from host.profiles.loader import load_all
from host.roles.health import ProcessHealth, RoleState
from host.roles.runner import ALL_ROLES, parse_roles, run_roles


@app.command("run")
def run(
    roles: str = typer.Option(
        os.environ.get("NPC_HOST_ROLES", ",".join(ALL_ROLES)),
        "--roles",
        help=f"comma-separated roles to run here ({', '.join(ALL_ROLES)}); several processes need NPC_HOST_REDIS_URL",
    ),
) -> None:
    """Run the host: NPCs appear in the game, hear nearby players and answer in text and voice."""
    settings = settings_or_exit()
    try:
        names = parse_roles(roles)
    except NpcHostError as exc:
        fail(f"error: {exc.message}")
    if set(names) != set(ALL_ROLES) and settings.redis_url is None:
        fail("running only some roles needs a shared hub: set NPC_HOST_REDIS_URL")
    setup_logging(settings, profile_secret_envs(settings.profiles_dir))
    run_or_exit(run_roles(settings, names))


@app.command("status")
def status(
    quiet: bool = typer.Option(False, "--quiet", help="print nothing; exit 0 when the hub answers and no role failed"),
) -> None:
    """Each process's roles and their health, then consumers, pending entries and lag of every stream on the hub.
    Exit code 1 when a role has failed."""
    settings = settings_or_exit()
    if settings.redis_url is None:
        fail("status reads the shared hub: set NPC_HOST_REDIS_URL (the in-process hub lives inside `npc-host run`)")
    reports, table = run_or_exit(_status(settings))
    failed = [(report.process, role) for report in reports for role in report.roles if role.state is RoleState.FAILED]
    if not quiet:
        console = Console()
        console.print(_roles_table(reports))
        console.print(table)
        passes = run_or_exit(_advisor_passes(settings))
        if passes is not None:
            console.print(passes)
    if failed:
        if not quiet:
            for process, role in failed:
                typer.secho(f"role {role.role} of {process} failed: {role.error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)


async def _advisor_passes(settings: Settings) -> Table | None:
    """The advisor's latest passes (tokens, time, outcome, failure reason), if it ever ran."""
    from host.cli.advisor_cmd import passes_table
    from host.store import Store

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.effective_database_url)
    try:
        passes = await store.advisor.recent_passes(limit=10)
    finally:
        await store.close()
    return passes_table(passes) if passes else None


def _roles_table(reports: list[ProcessHealth]) -> Table:
    table = Table("process", "role", "health", "since", "error")
    for report in sorted(reports, key=lambda report: report.process):
        for role in report.roles:
            since = time.strftime("%H:%M:%S", time.localtime(role.since))
            table.add_row(report.process, role.role, role.state.value, since, role.error or "")
    if not reports:
        table.add_row("-", "-", "no process reported in the last 15 s", "-", "")
    return table


async def _status(settings: Settings) -> tuple[list[ProcessHealth], Table]:
    bus = await make_bus(settings, client_name="npc-host-status")
    try:
        reports = [ProcessHealth.model_validate_json(text) for text in await bus.health_reports()]
        return reports, await _status_table(bus, settings)
    finally:
        await bus.aclose()


async def _status_table(bus: Bus, settings: Settings) -> Table:
    table = Table("stream", "length", "group", "consumers", "pending", "lag", "dead letters")
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
    return table
