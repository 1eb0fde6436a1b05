"""What every command does the same way: load the settings, turn a known error into one line and an exit code."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from host.config import Settings, load_settings, unknown_variables
from host.errors import NpcHostError
from host.extras import missing_extra

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    """The effective settings; a bad value is reported by field (`llm.backend: ...`), an unreadable config file by
    path and line, an `NPC_HOST_*` variable nothing reads by name with the closest setting; exit code 2."""
    unknown = unknown_variables(os.environ)
    try:
        settings = load_settings()
    except NpcHostError as exc:  # the config file is not TOML
        fail(f"config: {exc.message}", 2)
    except ValidationError as exc:
        # A mistyped section variable (NPC_HOST_LLM__BACKND) fails validation as an extra input: its name is the hint.
        typos = [line for line in unknown if "__" in line.split(":")[0]]
        errors = [error for error in exc.errors() if not (typos and error["type"] == "extra_forbidden")]
        _refuse([*typos, *(f"{'.'.join(str(part) for part in err['loc'])}: {err['msg']}" for err in errors)])
        raise typer.Exit(2) from None
    if unknown:  # profiles name their own secret variables (NPC_HOST_RCON_PASSWORD_<SERVER>...): read them only now
        from host.logs import profile_secret_envs

        try:
            _refuse(unknown_variables(os.environ, profile_secret_envs(settings.profiles_dir)))
        except NpcHostError:  # no profiles folder: the variables are judged by the settings alone
            _refuse(unknown)
    return settings


def _refuse(lines: list[str]) -> None:
    for line in lines:
        typer.secho(f"config: {line}", err=True, fg=typer.colors.RED)
    if lines:
        raise typer.Exit(2)


def run_or_exit(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine`; an `NpcHostError` becomes its one-line message and exit code 1, and so does a missing
    optional part (naming the pip extra that brings it)."""
    try:
        return asyncio.run(coroutine)
    except NpcHostError as exc:
        fail(f"error: {exc.message}")
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc)
        if missing is None:
            raise
        fail(f"error: {missing.message}")
