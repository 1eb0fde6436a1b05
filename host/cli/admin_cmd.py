"""`npc-host admin create-user NAME --role ROLE`: a user of the admin page (password from a no-echo prompt or stdin)."""

from __future__ import annotations

import getpass
import sys

import typer
from pydantic import SecretStr, ValidationError

from host.cli import app
from host.cli.common import fail, run_or_exit, settings_or_exit
from host.store import ConflictError, NewAdminUser, Store
from host.store.models import ADMIN_ROLES

admin_app = typer.Typer(help="The admin page's users.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")


def _read_password() -> str:
    if not sys.stdin.isatty():
        # Piped in (a script, a secret manager): the first line, without its line break.
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("password: ")
    if getpass.getpass("again: ") != password:
        fail("error: the two passwords differ")
    return password


async def _create(url: str, user: NewAdminUser) -> str:
    store = await Store.open(url)
    try:
        created = await store.admin_users.create(user)
    except ConflictError as exc:
        fail(f"error: {exc.message}")
    finally:
        await store.close()
    return f"created {created.role} {created.name}"


@admin_app.command("create-user")
def create_user(
    name: str = typer.Argument(help="the sign-in name"),
    role: str = typer.Option("viewer", "--role", help=f"one of {', '.join(ADMIN_ROLES)}"),
) -> None:
    """Add a user: viewers watch, operators also steer the NPCs, admins also edit profiles and users."""
    if role not in ADMIN_ROLES:
        fail(f"error: --role must be one of {', '.join(ADMIN_ROLES)}, not {role!r}", 2)
    settings = settings_or_exit()
    try:
        user = NewAdminUser.model_validate({"name": name, "password": SecretStr(_read_password()), "role": role})
    except ValidationError as exc:
        for err in exc.errors():
            typer.secho(f"error: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", err=True, fg="red")
        raise typer.Exit(2) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    typer.echo(run_or_exit(_create(settings.effective_database_url, user)))
