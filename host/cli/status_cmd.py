"""`npc-host status`: each process's roles and their health, then consumers, pending entries and lag of every stream
on the Redis hub.

Its own module so it imports only the hub and the health model: `--quiet` (a health check) reads the hub's health
reports and nothing else; rich, the profiles and the store load only for the full tables, and the store is only read
(bench/cli.py measures both; docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import typer

from host.bus import Bus, StreamKind, make_bus, stream_name
from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.config import Settings
from host.roles.health import ProcessHealth, RoleState

if TYPE_CHECKING:
    from rich.table import Table


@app.command("status")
def status(
    quiet: bool = typer.Option(False, "--quiet", help="print nothing; exit 0 when the hub answers and no role failed"),
) -> None:
    """Each process's roles and their health (and what a degraded process refuses), then consumers, pending entries
    and lag of every stream on the hub. Exit code 1 when a role has failed; degraded is not failed."""
    settings = settings_or_exit()
    if settings.redis_url is None:
        fail("status reads the shared hub: set NPC_HOST_REDIS_URL (the in-process hub lives inside `npc-host run`)")
    reports, table = run_or_exit(_status(settings, tables=not quiet))
    failed = [(report.process, role) for report in reports for role in report.roles if role.state is RoleState.FAILED]
    if table is not None:
        from rich.console import Console

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
    """The advisor's latest passes (tokens, time, outcome, failure reason), if it ever ran.

    Status only reads: the store is opened without preparing its schema (no migration, no Alembic), and an SQLite
    file that does not exist yet is not created."""
    from sqlalchemy.exc import DBAPIError

    from host.cli.advisor_cmd import passes_table
    from host.store.advisor_runs import AdvisorRunRepo
    from host.store.db import Database
    from host.store.urls import describe, parse_database_url, sqlite_file

    url = settings.effective_database_url
    path = sqlite_file(parse_database_url(url))
    if path is not None and not path.exists():
        return None
    db = await Database.open(url)
    try:
        passes = await AdvisorRunRepo(db).recent_passes(limit=10)
    except DBAPIError:  # no advisor table yet, or an older one: the schema is behind this npc-host
        typer.secho(
            f"advisor passes not shown: {describe(db.url)} is not at this npc-host's schema (npc-host db upgrade)",
            err=True,
            fg=typer.colors.YELLOW,
        )
        return None
    finally:
        await db.close()
    return passes_table(passes) if passes else None


def _roles_table(reports: list[ProcessHealth]) -> Table:
    from rich.table import Table

    table = Table("process", "role", "health", "since", "error")
    for report in sorted(reports, key=lambda report: report.process):
        for role in report.roles:
            since = time.strftime("%H:%M:%S", time.localtime(role.since))
            table.add_row(report.process, role.role, role.state.value, since, role.error or "")
        for degradation in report.degraded:  # serving, but refusing new work: not a failure
            since = time.strftime("%H:%M:%S", time.localtime(degradation.since))
            table.add_row(report.process, degradation.condition, "degraded", since, degradation.reason)
    if not reports:
        table.add_row("-", "-", "no process reported in the last 15 s", "-", "")
    return table


async def _status(settings: Settings, *, tables: bool) -> tuple[list[ProcessHealth], Table | None]:
    bus = await make_bus(settings, client_name="npc-host-status")
    try:
        reports = [ProcessHealth.model_validate_json(text) for text in await bus.health_reports()]
        return reports, (await _status_table(bus, settings) if tables else None)
    finally:
        await bus.aclose()


async def _status_table(bus: Bus, settings: Settings) -> Table:
    from rich.table import Table

    from host.profiles.loader import load_all

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
