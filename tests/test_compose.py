"""docker-compose.yml must wire every service the host needs, by the environment variable names the host reads.

No Docker engine runs here, so the file is checked by parsing it and feeding its host environment to `Settings`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from host.config import Settings

COMPOSE = Path(__file__).resolve().parent.parent / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _expand(value: str) -> str:
    """Resolve `${VAR:-default}` the way compose does when VAR is unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_every_needed_service_is_there_with_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"host", "redis", "postgres", "ollama", "prometheus", "grafana"} <= services.keys()
    for name in ("host", "redis", "postgres", "ollama"):
        assert "healthcheck" in services[name], f"{name} has no health check"


def test_redis_keeps_the_stream_on_disk(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"


def test_host_environment_is_read_by_the_host_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no npc-host.toml of the developer's leaks in
    for key in [k for k in os.environ if k.startswith("NPC_HOST_")]:
        monkeypatch.delenv(key)
    env = {k: _expand(str(v)) for k, v in compose["services"]["host"]["environment"].items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    settings = Settings()

    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    assert redis_url == "redis://redis:6379/0"
    assert settings.effective_database_url.startswith("postgresql+asyncpg://npc:")
    assert settings.effective_database_url.endswith("@postgres:5432/npc_host")
    assert settings.llm.backend == "ollama"
    assert settings.llm.ollama_url == "http://ollama:11434"
    assert settings.profiles_dir == Path("/srv/npc_profiles")
    assert settings.admin_host == "0.0.0.0"
    # Prometheus scrapes the port the host serves /metrics on.
    prometheus = yaml.safe_load((COMPOSE.parent / "deploy/prometheus/prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert f"host:{settings.admin_port}" in targets


def test_example_rcon_password_variable_matches_the_example_server(compose: dict[str, Any]) -> None:
    server_toml = (COMPOSE.parent / "npc_profiles/example/server.toml").read_text()
    match = re.search(r'password_env\s*=\s*"([A-Z0-9_]+)"', server_toml)
    assert match is not None, "npc_profiles/example/server.toml names no RCON password variable"
    assert match.group(1) in compose["services"]["host"]["environment"]


def test_host_command_names_only_roles_the_host_has(compose: dict[str, Any]) -> None:
    from host.roles.runner import parse_roles

    command = compose["services"]["host"]["command"]
    roles = _expand(command[command.index("--roles") + 1])
    assert parse_roles(roles)  # raises on a role the host does not know
