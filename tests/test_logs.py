"""The log filter that masks secret values: message text and the text of a logged exception."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydantic import SecretStr

from host.config import Settings
from host.logs import SecretMasker, profile_secret_envs, secret_values


def _settings(**values: object) -> Settings:
    return Settings.model_validate(values)


def _handler(settings: Settings, password_envs: tuple[str, ...] = ()) -> tuple[logging.Logger, list[str]]:
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.addFilter(SecretMasker(secret_values(settings, password_envs)))
    logger = logging.getLogger(f"test-logs-{id(lines)}")
    logger.propagate = False
    logger.addHandler(handler)
    return logger, lines


def test_every_configured_secret_is_masked_in_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_LOGS_RCON_PASSWORD", "hunter2-rcon")
    settings = _settings(
        redis_url=SecretStr("redis://:hunter2-redis@cache:6379/0"),
        database_url=SecretStr("postgresql+asyncpg://npc:hunter2-db@db/npc"),
        llm={
            "openai_api_key": "sk-hunter2-key",
            "openai_url": "https://npc:hunter2-openai@llm.example/v1",
            "ollama_url": "http://npc:hunter2-ollama@gpu:11434",
        },
    )
    logger, lines = _handler(settings, ("TEST_LOGS_RCON_PASSWORD",))
    for secret in ("hunter2-rcon", "hunter2-redis", "hunter2-db", "sk-hunter2-key", "hunter2-openai", "hunter2-ollama"):
        logger.warning("connecting with %s now", secret)
    assert lines == ["connecting with ******** now"] * 6


def test_a_secret_inside_a_logged_exception_is_masked() -> None:
    logger, lines = _handler(_settings(redis_url=SecretStr("redis://:hunter2-redis@cache:6379/0")))
    try:
        raise ConnectionError("cannot reach redis://:hunter2-redis@cache:6379/0")
    except ConnectionError:
        logger.exception("hub lost")
    assert "hunter2" not in lines[0]
    assert "ConnectionError: cannot reach redis://:********@cache:6379/0" in lines[0]


def test_the_profiles_rcon_password_and_bridge_token_are_masked(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    envs = profile_secret_envs(repo_root / "npc_profiles")
    assert sorted(envs) == ["NPC_HOST_BRIDGE_TOKEN_EXAMPLE", "NPC_HOST_RCON_PASSWORD_EXAMPLE"]
    monkeypatch.setenv("NPC_HOST_RCON_PASSWORD_EXAMPLE", "hunter2-rcon")
    monkeypatch.setenv("NPC_HOST_BRIDGE_TOKEN_EXAMPLE", "hunter2-bridge")
    logger, lines = _handler(_settings(), tuple(envs))
    logger.warning("plugin sent %s, rcon has %s", "hunter2-bridge", "hunter2-rcon")
    assert lines == ["plugin sent ********, rcon has ********"]
