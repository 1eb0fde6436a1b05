"""`npc-host db upgrade` and `npc-host db current`: the schema of the configured database."""

from __future__ import annotations

import typer

from host.cli import app
from host.cli.common import run_or_exit, settings_or_exit
from host.store import Database
from host.store.migrate import current_revision, head_revision, upgrade
from host.store.urls import describe

db_app = typer.Typer(help="Database schema (NPC_HOST_DATABASE_URL; default: SQLite file in data_dir).")
app.add_typer(db_app, name="db", no_args_is_help=True)


def _database_url() -> str:
    return settings_or_exit().effective_database_url


async def _upgrade(url: str) -> str:
    db = await Database.open(url)
    try:
        await upgrade(db)
        return f"{describe(db.url)} is at schema revision {await current_revision(db)}"
    finally:
        await db.close()


async def _current(url: str) -> str:
    db = await Database.open(url)
    try:
        current, head = await current_revision(db), head_revision()
    finally:
        await db.close()
    hint = "up to date" if current == head else "run `npc-host db upgrade`"
    return f"{describe(db.url)}: schema revision {current or 'none'}, newest {head} ({hint})"


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Migrate the database to the newest schema revision (safe to run again, and from several hosts at once)."""
    typer.echo(run_or_exit(_upgrade(_database_url())))


@db_app.command("current")
def current_command() -> None:
    """Show the database's schema revision and the newest one this npc-host knows."""
    typer.echo(run_or_exit(_current(_database_url())))
