"""`npc-host advisor ...`: run a pass now, list the advisor's recommendations, accept or reject pending ones, and
show its recent passes (docs/advisor.md)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, get_args

import typer
from rich.console import Console

from host.advisor.pass_summary import PassSummary
from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.cli.pass_table import passes_table
from host.config import Settings
from host.store import AdvisorPassRecord, Recommendation, RecommendationStatus, Store

if TYPE_CHECKING:
    from host.advisor.passes import PassResult

T = TypeVar("T")

advisor_app = typer.Typer(help="The advisor: passes over the transcripts that steer the NPCs (docs/advisor.md).")
app.add_typer(advisor_app, name="advisor", no_args_is_help=True)


@advisor_app.command("run")
def run_command(server: str = typer.Argument(..., help="the server profile's name")) -> None:
    """Run one advisor pass of SERVER now (skipped when another pass of it is running)."""
    settings = settings_or_exit()
    from host.advisor.shared_state import PassBusyError

    try:
        result = run_or_exit(_run_pass(settings, server))
    except PassBusyError as exc:
        fail(f"skipped: {exc}", 3)
    if result.outcome != "ok":
        fail(f"advisor pass {result.pass_id} of '{server}' failed ({result.reason}): {result.detail}")
    usage = result.usage
    typer.echo(
        f"advisor pass {result.pass_id} of '{server}': {usage.lines} new line(s), "
        f"{usage.recommendations} recommendation(s), {usage.tokens_in} tokens in, {usage.tokens_out} out, "
        f"{usage.cache_hits} cached digest(s)"
    )
    for recommendation in result.recommendations:
        typer.echo(_describe(recommendation))


async def _run_pass(settings: Settings, server: str) -> PassResult:
    # Imported here: the passes load the model backends, which `npc-host --help` should not wait for.
    from host.advisor.passes import AdvisorPasses
    from host.advisor.shared_state import make_shared_state
    from host.roles.services import HostServices

    services = await HostServices.open(settings, watch_profiles=False)
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    state = make_shared_state(redis_url, settings.bus.key_prefix)
    passes = AdvisorPasses(services, state)
    try:
        if server not in services.registry.server_names():
            fail(f"no server profile named '{server}' in {settings.profiles_dir}")
        return await passes.run(server, "manual")
    finally:
        await passes.aclose()
        await state.aclose()
        await services.aclose()


@advisor_app.command("list")
def list_command(
    server: str = typer.Argument(..., help="the server profile's name"),
    npc: str | None = typer.Option(None, "--npc", help="only this NPC's"),
    status: str | None = typer.Option(None, "--status", help="pending, active or rejected"),
    limit: int = typer.Option(20, "--limit", min=1, max=1000),
) -> None:
    """SERVER's recommendations, newest first."""
    statuses: tuple[RecommendationStatus, ...] = get_args(RecommendationStatus)
    chosen = next((known for known in statuses if known == status), None)
    if status is not None and chosen is None:
        fail(f"--status: {status!r} is not one of {', '.join(statuses)}")
    settings = settings_or_exit()

    async def listed(store: Store) -> list[Recommendation]:
        return await store.steering.list_recommendations(server, npc=npc, status=chosen, limit=limit)

    recommendations = run_or_exit(_with_store(settings, listed))
    if not recommendations:
        typer.echo(f"no recommendations for '{server}'")
    for recommendation in recommendations:
        typer.echo(_describe(recommendation))


@advisor_app.command("accept")
def accept_command(
    recommendation_id: int = typer.Argument(..., help="the id `advisor list` shows"),
    by: str = typer.Option("cli", "--by", help="who decided, for the record"),
) -> None:
    """Accept a pending recommendation: the NPC follows it from its next turn on."""
    _decide(recommendation_id, accept=True, by=by)


@advisor_app.command("reject")
def reject_command(
    recommendation_id: int = typer.Argument(..., help="the id `advisor list` shows"),
    by: str = typer.Option("cli", "--by", help="who decided, for the record"),
) -> None:
    """Reject a pending recommendation: it never reaches the NPC."""
    _decide(recommendation_id, accept=False, by=by)


def _decide(recommendation_id: int, *, accept: bool, by: str) -> None:
    settings = settings_or_exit()

    async def decide(store: Store) -> Recommendation:
        return await store.steering.decide_recommendation(recommendation_id, accept=accept, by=by)

    typer.echo(_describe(run_or_exit(_with_store(settings, decide))))


async def _with_store(settings: Settings, use: Callable[[Store], Awaitable[T]]) -> T:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = await Store.open(settings.effective_database_url)
    try:
        return await use(store)
    finally:
        await store.close()


def _describe(recommendation: Recommendation) -> str:
    head = (
        f"#{recommendation.id} {recommendation.npc} [{recommendation.status}, priority {recommendation.priority}"
        f", {recommendation.created_at:%Y-%m-%d %H:%M} UTC]"
    )
    items = [
        f"  {item.kind}{' ' + item.warning if item.warning else ''} ({item.priority}, {item.lifetime_minutes} min): "
        f"{item.text}"
        for item in sorted(recommendation.items, key=lambda item: -item.priority)
    ]
    return "\n".join([head, *items])


def _summary(record: AdvisorPassRecord) -> PassSummary:
    finished = record.finished_at
    return PassSummary(
        pass_id=record.id,
        server=record.server,
        trigger=record.trigger,
        outcome=record.outcome,
        reason=record.reason,
        **record.usage.model_dump(),
        seconds=None if finished is None else (finished - record.started_at).total_seconds(),
    )


@advisor_app.command("passes")
def passes_command(
    server: str | None = typer.Argument(None, help="only this server's"),
    limit: int = typer.Option(10, "--limit", min=1, max=1000),
) -> None:
    """The advisor's recent passes: trigger, outcome, failure reason, lines read, tokens spent, time."""
    settings = settings_or_exit()

    async def recent(store: Store) -> list[AdvisorPassRecord]:
        return await store.advisor.recent_passes(server, limit)

    Console().print(passes_table(_summary(record) for record in run_or_exit(_with_store(settings, recent))))
