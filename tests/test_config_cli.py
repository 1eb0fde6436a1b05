"""`npc-host config show`: the effective configuration, from file and environment, with every secret masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _config_show(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NPC_HOST_")}
    return subprocess.run(
        [sys.executable, "-m", "host", "config", "show"],
        cwd=cwd,
        env={**clean, "PYTHONPATH": str(REPO_ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_environment_overrides_the_file_and_secrets_are_masked(tmp_path: Path) -> None:
    (tmp_path / "npc-host.toml").write_text('log_level = "DEBUG"\n[llm]\nbackend = "ollama"\nollama_model = "qwen"\n')
    result = _config_show(
        tmp_path,
        {
            "NPC_HOST_LLM__OLLAMA_MODEL": "llama3.2:3b",
            "NPC_HOST_DATABASE_URL": "postgresql+asyncpg://npc:hunter2-db@db.example:5432/npc",
            "NPC_HOST_REDIS_URL": "redis://:hunter2-redis@cache:6379/0",
            "NPC_HOST_LLM__OPENAI_API_KEY": "sk-hunter2-key",
            "NPC_HOST_LLM__OPENAI_URL": "https://npc:hunter2-llm@llm.example/v1",
        },
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["log_level"] == "DEBUG"  # from the file
    assert shown["llm"]["backend"] == "ollama"  # from the file
    assert shown["llm"]["ollama_model"] == "llama3.2:3b"  # the environment wins over the file
    assert shown["database_url"] == "postgresql+asyncpg://npc:********@db.example:5432/npc"
    assert shown["redis_url"] == "redis://:********@cache:6379/0"
    assert shown["llm"]["openai_api_key"] == "********"
    assert shown["llm"]["openai_url"] == "https://npc:********@llm.example/v1"
    assert "hunter2" not in result.stdout + result.stderr


def test_a_bad_value_names_the_field(tmp_path: Path) -> None:
    result = _config_show(tmp_path, {"NPC_HOST_LLM__BACKEND": "gpt5"})
    assert result.returncode != 0
    assert "llm.backend" in result.stderr


@pytest.mark.parametrize("path", ["npc-host.toml", "custom.toml"])
def test_the_config_file_can_be_named(tmp_path: Path, path: str) -> None:
    (tmp_path / path).write_text('log_level = "ERROR"\n')
    env = {} if path == "npc-host.toml" else {"NPC_HOST_CONFIG": str(tmp_path / path)}
    result = _config_show(tmp_path, env)
    assert json.loads(result.stdout)["log_level"] == "ERROR"


def test_a_config_file_that_is_not_toml_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "npc-host.toml").write_text('log_level = "INFO"\n[llm\n')
    result = _config_show(tmp_path, {})
    assert result.returncode == 2
    assert result.stderr.startswith("config: npc-host.toml: not valid TOML: ")
    assert "line 2" in result.stderr
    assert "Traceback" not in result.stderr
