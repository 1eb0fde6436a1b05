"""`npc-host status`: each process's roles and their health, then consumers, pending entries and lag of every stream
on the Redis hub.

Its own module so it imports only what it reads: `--quiet` (a health check) reads the hub's health reports through
`host.bus.health` (redis-py and nothing else of the hub); the full tables add the hub and rich. The streams listed are
the ones Redis holds (no profile is parsed), and the database is never opened: the advisor's latest passes come from
the summaries it leaves on Redis (bench/cli.py measures both; docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from host.bus.health import read_health_reports
from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.config import Settings
from host.roles.health import ProcessHealth, RoleState

if TYPE_CHECKING:
    from rich.table import Table

    from host.bus import Bus


@app.command("status")
def status(
    quiet: bool = typer.Option(False, "--quiet", help="print nothing; exit 0 when the hub answers and no role failed"),
) -> None:
    """Each process's roles and their health (and what a degraded process refuses), then consumers, pending entries
    and lag of every stream on the hub. Exit code 1 when a role has failed; degraded is not failed."""
    settings = settings_or_exit()
    if settings.redis_url is None:
        fail("status reads the shared hub: set NPC_HOST_REDIS_URL (the in-process hub lives inside `npc-host run`)")
    url = settings.redis_url.get_secret_value()
    reports, table = run_or_exit(_status(url, settings, tables=not quiet))
    failed = [(report.process, role) for report in reports for role in report.roles if role.state is RoleState.FAILED]
    if table is not None:
        from rich.console import Console

        console = Console()
        console.print(_roles_table(reports))
        console.print(table)
        passes = run_or_exit(_advisor_passes(url, settings.bus.key_prefix))
        if passes is not None:
            console.print(passes)
    if failed:
        if not quiet:
            for process, role in failed:
                typer.secho(f"role {role.role} of {process} failed: {role.error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)


async def _advisor_passes(redis_url: str, key_prefix: str) -> Table | None:
    """The advisor's latest passes (tokens, time, outcome, failure reason), if it ever ran: the summaries the advisor
    leaves on Redis, so status never opens the database (`npc-host advisor passes` reads the full records there)."""
    from host.advisor.shared_state import RedisState
    from host.cli.pass_table import passes_table

    state = RedisState(redis_url, key_prefix)
    try:
        passes = await state.recent_passes()
    finally:
        await state.aclose()
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


async def _status(url: str, settings: Settings, *, tables: bool) -> tuple[list[ProcessHealth], Table | None]:
    texts = await read_health_reports(url, settings.bus, client_name="npc-host-status")
    reports = [ProcessHealth.model_validate_json(text) for text in texts]
    if not tables:
        return reports, None
    from host.bus import make_bus

    bus = await make_bus(settings, client_name="npc-host-status")
    try:
        return reports, await _status_table(bus)
    finally:
        await bus.aclose()


async def _status_table(bus: Bus) -> Table:
    """Every stream of each server that has any on the hub, in the order events flow through them."""
    from rich.table import Table

    from host.bus.streams import StreamKind, stream_name, stream_server

    table = Table("stream", "length", "group", "consumers", "pending", "lag", "dead letters")
    servers = sorted({server for stream in await bus.streams() if (server := stream_server(stream))})
    for server in servers:
        for kind in StreamKind:
            info = await bus.stream_info(stream_name(server, kind))
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
    if not servers:
        table.add_row("no streams yet", "-", "-", "-", "-", "-", "-")
    return table
