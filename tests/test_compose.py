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


def test_the_schema_is_migrated_before_the_host_starts(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["npc-host", "db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    assert services["host"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_the_health_check_asks_the_host_not_redis(compose: dict[str, Any]) -> None:
    test = " ".join(compose["services"]["host"]["healthcheck"]["test"])
    env = compose["services"]["host"]["environment"]
    assert f"127.0.0.1:{env['NPC_HOST_ADMIN_PORT']}/healthz" in test
    assert "status" not in test and "redis" not in test


def test_the_example_reaches_minecraft_through_the_compose_settings(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from host.config import unknown_variables
    from host.logs import profile_secret_envs
    from host.profiles.loader import load_server

    env = {k: _expand(str(v)) for k, v in compose["services"]["host"]["environment"].items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    load = load_server(COMPOSE.parent / "npc_profiles" / "example")
    assert load.server is not None and load.server.rcon is not None
    assert (load.server.rcon.host, load.server.rcon.port) == ("host.docker.internal", 25575)
    assert load.server.log_path == "/srv/minecraft/logs/latest.log"
    mounts = compose["services"]["host"]["volumes"]
    assert any(_expand(mount).split(":")[1] == "/srv/minecraft/logs" for mount in mounts)
    assert "host.docker.internal:host-gateway" in compose["services"]["host"]["extra_hosts"]
    # Every NPC_HOST_* variable the compose file sets is read by the host: a setting or a secret the profile names.
    secrets = profile_secret_envs(COMPOSE.parent / "npc_profiles")
    assert unknown_variables({k: v for k, v in env.items() if k.startswith("NPC_HOST_")}, secrets) == []


def test_the_image_carries_the_licence_and_no_compiler() -> None:
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    assert re.search(r"^COPY .*\bLICENSE\b", dockerfile, re.MULTILINE)
    assert "build-essential" not in dockerfile.split("FROM", 1)[1].split("RUN pip", 1)[0]


def _npc_host_commands(compose: dict[str, Any]) -> dict[str, list[str]]:
    """Every `npc-host ...` command line the compose file and the Dockerfile start, by where it is written."""
    commands = {
        f"service {name}": [_expand(str(part)) for part in service["command"]]
        for name, service in compose["services"].items()
        if isinstance(service.get("command"), list) and service["command"][:1] == ["npc-host"]
    }
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)
    assert cmd is not None, "the Dockerfile has no CMD"
    commands["Dockerfile CMD"] = yaml.safe_load(cmd.group(1))
    return commands


def test_every_npc_host_command_they_start_is_one_the_cli_has(compose: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from host.cli import app

    commands = _npc_host_commands(compose)
    assert {"service migrate", "service host", "Dockerfile CMD"} <= commands.keys()
    runner = CliRunner()
    for where, argv in commands.items():
        assert argv[0] == "npc-host", where
        # `--help` after the arguments: click parses every option name first (an unknown one fails) and stops
        # before running anything.
        shown = runner.invoke(app, [*argv[1:], "--help"])
        assert shown.exit_code == 0, f"{where}: npc-host {' '.join(argv[1:])}: {shown.output}"
        assert shown.output.startswith("Usage:"), f"{where}: {shown.output}"


def test_every_npc_host_variable_they_use_is_a_setting(compose: dict[str, Any]) -> None:
    """Set in any service, interpolated from the caller's shell, or set in the image: each must be read by the host
    (an unknown `NPC_HOST_*` variable stops it with exit code 2)."""
    from host.config import unknown_variables
    from host.logs import profile_secret_envs

    text = COMPOSE.read_text() + (COMPOSE.parent / "Dockerfile").read_text()
    names = set(re.findall(r"\bNPC_HOST_[A-Z0-9_]+", text))
    assert "NPC_HOST_ROLES" in names and "NPC_HOST_REDIS_URL" in names
    secrets = profile_secret_envs(COMPOSE.parent / "npc_profiles")
    assert unknown_variables(dict.fromkeys(names, ""), secrets) == []


def test_published_and_exposed_ports_are_the_ports_the_host_listens_on(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("NPC_HOST_")]:
        monkeypatch.delenv(key)
    host = compose["services"]["host"]
    for key, value in host["environment"].items():
        monkeypatch.setenv(key, _expand(str(value)))
    settings = Settings()
    listening = {settings.bridge_port, settings.admin_port}
    published = {int(str(mapping).rsplit(":", 1)[1]) for mapping in host["ports"]}
    assert published == listening
    assert settings.bridge_host == settings.admin_host == "0.0.0.0"  # reachable through the published ports
    exposed = re.search(r"^EXPOSE (.+)$", (COMPOSE.parent / "Dockerfile").read_text(), re.MULTILINE)
    assert exposed is not None and {int(port) for port in exposed.group(1).split()} == listening


def test_the_health_check_path_is_served_by_every_host_process() -> None:
    from host.admin.health_routes import router

    assert "/healthz" in {getattr(route, "path", None) for route in router.routes}


def test_the_image_holds_every_package_the_wheel_ships_and_installs_real_extras() -> None:
    import tomllib

    project = tomllib.loads((COMPOSE.parent / "pyproject.toml").read_text())
    dockerfile = (COMPOSE.parent / "Dockerfile").read_text()
    copied = {part for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE) for part in line.split()[:-1]}
    packages = {pattern.rstrip("*") for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied
    assert {"pyproject.toml", project["project"]["readme"], *project["project"]["license-files"]} <= copied
    extras = re.search(r"^ARG EXTRAS=(.+)$", dockerfile, re.MULTILINE)
    assert extras is not None
    assert set(extras.group(1).split(",")) <= project["project"]["optional-dependencies"].keys()
