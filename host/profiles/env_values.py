"""`${VAR}` and `${VAR:-default}` in the connection values of a server.toml (`log_path`, `[rcon] host` and `port`),
so one profile folder works on a desktop and inside a container: compose sets the variables, nothing is copied.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

Loc = tuple[str | int, ...]

# The values that differ between where the host runs; everything else in a profile means the same everywhere.
EXPANDED: tuple[Loc, ...] = (("log_path",), ("rcon", "host"), ("rcon", "port"))
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def expand(data: dict[str, Any], environ: Mapping[str, str] | None = None) -> list[tuple[Loc, str]]:
    """Replace the references in `EXPANDED` values of `data` in place; returns (location, message) for each
    variable that is unset and has no default."""
    env = os.environ if environ is None else environ
    problems: list[tuple[Loc, str]] = []
    for loc in EXPANDED:
        table: Any = data
        for key in loc[:-1]:
            table = table.get(key) if isinstance(table, dict) else None
        if not isinstance(table, dict) or not isinstance(table.get(loc[-1]), str):
            continue

        def value_of(match: re.Match[str], loc: Loc = loc) -> str:
            name, default = match["name"], match["default"]
            if name in env:
                return env[name]
            if default is None:
                problems.append((loc, f"environment variable {name} is not set (and the value gives no :-default)"))
                return ""
            return default

        table[loc[-1]] = _REFERENCE.sub(value_of, table[loc[-1]])
    return problems
