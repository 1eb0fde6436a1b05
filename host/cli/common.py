"""What every command does the same way: load the settings, turn a known error into one line and an exit code."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer
from pydantic import ValidationError

from host.config import Settings, load_settings
from host.errors import NpcHostError

T = TypeVar("T")


def fail(message: str, code: int = 1) -> NoReturn:
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    """The effective settings; a bad value is reported by field (`llm.backend: ...`), an unreadable config file by
    path and line, with exit code 2."""
    try:
        return load_settings()
    except NpcHostError as exc:  # the config file is not TOML
        fail(f"config: {exc.message}", 2)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"])
            typer.secho(f"config: {field}: {err['msg']}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


def run_or_exit(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run `coroutine`; an `NpcHostError` becomes its one-line message and exit code 1."""
    try:
        return asyncio.run(coroutine)
    except NpcHostError as exc:
        fail(f"error: {exc.message}")
