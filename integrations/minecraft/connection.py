"""An RCON client for a server profile, with the password read from the environment variable the profile names."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import SecretStr

from host.errors import ConfigError
from host.profiles.schema import ServerProfile
from integrations.minecraft.rcon import RconClient


def rcon_client(server: ServerProfile, environ: Mapping[str, str] = os.environ, **options: float) -> RconClient:
    """`options` go to `RconClient` (timeout_s, backoff_initial_s, backoff_max_s)."""
    if server.rcon is None:
        raise ConfigError(
            f"server '{server.name}' has no [rcon] section in its server.toml", code="rcon_not_configured"
        )
    variable = server.rcon.password_env
    password = environ.get(variable, "")
    if not password:
        # Name the variable, never a value.
        raise ConfigError(
            f"the RCON password for server '{server.name}' is read from the environment variable {variable}, "
            "which is not set (or empty)",
            code="rcon_password_unset",
        )
    return RconClient(server.rcon.host, server.rcon.port, SecretStr(password), **options)
