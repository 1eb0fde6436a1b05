"""`npc-host profiles check` and `profiles list`: what a user sees and the exit codes scripts rely on."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import host.cli.profiles_cmd  # noqa: F401  (registers the commands on the app)
from host.cli import app

runner = CliRunner()


@pytest.fixture
def profiles_root(tmp_path: Path, repo_root: Path) -> Path:
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / "example")
    return tmp_path / "profiles"


def test_check_passes_on_the_example_village(repo_root: Path) -> None:
    result = runner.invoke(app, ["profiles", "check", str(repo_root / "npc_profiles")])
    assert result.exit_code == 0, result.output
    assert result.stdout == "example: 3 NPCs (birch, bram, hilde)\n"


def test_check_accepts_one_server_folder(repo_root: Path) -> None:
    result = runner.invoke(app, ["profiles", "check", str(repo_root / "npc_profiles" / "example")])
    assert result.exit_code == 0, result.output
    assert result.stdout == "example: 3 NPCs (birch, bram, hilde)\n"


def test_check_defaults_to_the_configured_profiles_dir(profiles_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPC_HOST_PROFILES_DIR", str(profiles_root))
    (profiles_root / "example" / "hilde.toml").unlink()
    result = runner.invoke(app, ["profiles", "check"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "example: 2 NPCs (birch, bram)\n"


def test_a_bad_setting_is_named_when_the_configured_dir_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPC_HOST_LOG_LEVEL", "LOUD")
    result = runner.invoke(app, ["profiles", "check"])
    assert result.exit_code == 2
    assert "config: log_level:" in result.stderr
    assert result.stdout == ""


def test_check_prints_every_problem_and_exits_1(profiles_root: Path) -> None:
    bram = profiles_root / "example" / "bram.toml"
    bram.write_text(bram.read_text().replace("temperature = 0.8", "temperature = 3.0"))
    hilde = profiles_root / "example" / "hilde.toml"
    hilde.write_text(hilde.read_text().replace("[world]", "[wrold]"))
    bram_line = bram.read_text().splitlines().index("temperature = 3.0") + 1
    hilde_line = hilde.read_text().splitlines().index("[wrold]") + 1
    result = runner.invoke(app, ["profiles", "check", str(profiles_root)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "example: 1 NPC (birch); 2 file(s) rejected",
        f"{bram}:{bram_line}: llm.temperature: Input should be less than or equal to 2 (got 3.0)",
        f"{hilde}:1: world.position: required field is missing",
        f"{hilde}:{hilde_line}: wrold: unknown field; did you mean 'world'?",
    ]
    assert "3 problem(s) found" in result.stderr


def test_check_reports_a_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["profiles", "check", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert f"profiles folder not found: {tmp_path / 'nowhere'}" in result.stderr


def test_check_reports_an_empty_root(tmp_path: Path) -> None:
    result = runner.invoke(app, ["profiles", "check", str(tmp_path)])
    assert result.exit_code == 1
    assert "no server folders" in result.stderr


def test_list_shows_each_npc_with_its_place(profiles_root: Path) -> None:
    result = runner.invoke(app, ["profiles", "list", str(profiles_root)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "example" in line]
    assert len(rows) == 3
    assert "Old Birch" in rows[0] and "1.5, 64, 8.5" in rows[0]
    assert "Hilde" in rows[2] and "-6.5, 64, 5.5" in rows[2]


def test_the_installed_command_runs_check(repo_root: Path, profiles_root: Path) -> None:
    (profiles_root / "example" / "birch.toml").write_text('id = "birch"\n')
    env = {**os.environ, "ORT_DISABLE_TELEMETRY": "1"}
    command = [sys.executable, "-m", "host", "profiles", "check", str(profiles_root)]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=repo_root, check=False)
    assert result.returncode == 1, result.stderr
    assert f"{profiles_root / 'example' / 'birch.toml'}:1: name: required field is missing" in result.stdout
