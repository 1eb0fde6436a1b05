"""The CLI as a person types at it: NPCs by id, name or alias in any case, typos answered with the closest name and
the choices, help text shown as written, settings that move what was not found named, and a start that loads no
model runtime."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from host.cli import COMMANDS, app
from host.config import Settings
from host.logs import setup_logging
from host.profiles.loader import load_server
from host.profiles.lookup import UnknownNpcError, find_npc

runner = CliRunner()
RUNTIMES = ("llama_cpp", "faster_whisper", "piper", "onnxruntime", "ctranslate2")
HEAVY = (*RUNTIMES, "sqlalchemy", "alembic")


@pytest.fixture
def workdir(tmp_path: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder outside the repository holding a copy of the example village; no NPC_HOST_* of the caller's."""
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "npc_profiles" / "example")
    for name in [name for name in os.environ if name.startswith("NPC_HOST_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("NPC_HOST_CONFIG", str(tmp_path / "npc-host.toml"))
    monkeypatch.setenv("NPC_HOST_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_help_and_status_load_no_model_runtime_nor_the_store(repo_root: Path) -> None:
    probe = (
        "import sys\nfrom host.cli import main\n"
        "for argv in (['npc-host', '--help'], ['npc-host', 'status']):\n"
        "    sys.argv = argv\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPC_HOST_")}
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=repo_root, env=env, capture_output=True, text=True, check=False
    )
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout + done.stderr


def _loaded_by(argv: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    """The modules `npc-host ARGV` imported, in a process of its own; the command must succeed."""
    probe = (
        f"import sys\nfrom host.cli import main\nsys.argv = {['npc-host', *argv]!r}\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print(' '.join(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return set(done.stderr.split())


def test_status_on_a_hub_imports_only_what_it_reads(workdir: Path, redis_url: str, redis_prefix: str) -> None:
    """`status --quiet` (a health check) reads the hub's health reports with redis-py alone: none of the hub's
    consumer side, no store, no event models, no rich. The full status adds the stream tables (the streams Redis holds:
    no profile is parsed) and the advisor's latest passes from Redis: it never opens (or creates) the database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NPC_HOST_")}
    env.update(
        NPC_HOST_REDIS_URL=redis_url,
        NPC_HOST_BUS__KEY_PREFIX=redis_prefix,
        NPC_HOST_CONFIG=str(workdir / "npc-host.toml"),
        NPC_HOST_DATA_DIR=str(workdir / "data"),
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    hub = {"host.bus.base", "host.bus.consumer", "host.bus.memory", "host.bus.redis_bus", "host.bus.reports"}
    quiet = _loaded_by(["status", "--quiet"], env, workdir)
    assert {"host.bus.health", "host.config", "redis"} <= quiet
    assert not quiet & {*hub, "host.events", "host.store", "host.profiles", "rich", *HEAVY}
    full = _loaded_by(["status"], env, workdir)
    assert {"rich.table", "host.bus.redis_bus"} <= full
    assert not full & {"host.bus.memory", "host.profiles", "host.store", "sqlalchemy", "alembic", *RUNTIMES}
    assert not (workdir / "data").exists()


def test_every_command_is_listed_with_its_line(workdir: Path) -> None:
    # Once with the command modules unloaded, once after running commands loaded them: the list must not change.
    for _ in range(2):
        shown = runner.invoke(app, ["--help"])
        assert shown.exit_code == 0
        for name, entry in COMMANDS.items():
            assert name in shown.output
            assert entry.help.split()[0] in shown.output
        for name in COMMANDS:
            runner.invoke(app, [name, "--help"])


def test_help_shows_brackets_as_written(workdir: Path) -> None:
    shown = runner.invoke(app, ["say", "--help"])
    assert shown.exit_code == 0
    assert "[happy]" in shown.output


def test_a_mistyped_command_gets_the_closest_one(workdir: Path) -> None:
    typed = runner.invoke(app, ["stauts"])
    assert typed.exit_code == 2
    assert "Did you mean 'status'" in typed.output


@pytest.mark.parametrize("typed", ["hilde", "HILDE", "Hilde", "captain", "Captain Hilde", " captain  HILDE "])
def test_an_npc_is_found_by_id_name_or_alias_in_any_case(repo_root: Path, typed: str) -> None:
    npcs = load_server(repo_root / "npc_profiles" / "example").npcs
    assert find_npc(npcs, "example", typed).id == "hilde"


def test_an_unknown_npc_lists_the_choices_and_the_closest(repo_root: Path) -> None:
    npcs = load_server(repo_root / "npc_profiles" / "example").npcs
    with pytest.raises(UnknownNpcError) as caught:
        find_npc(npcs, "example", "Hild")
    assert "did you mean 'Hilde'?" in caught.value.message
    assert "birch (Old Birch), bram (Bram), hilde (Hilde)" in caught.value.message


def test_chat_takes_the_name_and_lists_the_npcs_on_a_miss(workdir: Path) -> None:
    missed = runner.invoke(app, ["chat", "example", "Hild", "--once", "hello"])
    assert missed.exit_code == 1
    assert "did you mean 'Hilde'?" in missed.output and "bram (Bram)" in missed.output


def test_say_names_the_closest_server(workdir: Path) -> None:
    missed = runner.invoke(app, ["say", "exampel", "bram", "Hi.", "--out", "x.wav"])
    assert missed.exit_code == 1
    assert "did you mean 'example'?" in missed.output and "NPC_HOST_PROFILES_DIR" in missed.output


def test_an_unknown_emotion_is_refused_with_the_closest(workdir: Path) -> None:
    for args in (["Hello.", "--emotion", "hapy"], ["[hapy] Hello."]):
        refused = runner.invoke(app, ["say", "example", "bram", *args, "--out", "x.wav"])
        assert refused.exit_code == 1
        assert "unknown emotion 'hapy' (did you mean 'happy'?)" in refused.output
        assert not (workdir / "x.wav").exists()


def test_a_mistyped_variable_is_refused_with_the_setting_meant(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for typed, meant in (
        ("NPC_HOST_LOG_LEVL", "NPC_HOST_LOG_LEVEL"),
        ("NPC_HOST_LLM__BACKND", "NPC_HOST_LLM__BACKEND"),
    ):
        with monkeypatch.context() as env:
            env.setenv(typed, "x")
            refused = runner.invoke(app, ["config", "show"])
        assert refused.exit_code == 2
        assert f"{typed}: no such setting (did you mean '{meant}'?)" in refused.output


def test_a_variable_a_profile_names_is_not_a_typo(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NPC_HOST_RCON_PASSWORD_EXAMPLE", "a-password")
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0, shown.output


def test_the_variables_ci_and_the_benchmarks_export_are_not_typos(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI exports NPC_HOST_REQUIRE_SERVICES to every process it starts; refusing it stopped every command there.
    for name in ("NPC_HOST_REQUIRE_SERVICES", "NPC_HOST_SOAK_S", "NPC_HOST_SOAK_PLAYERS"):
        monkeypatch.setenv(name, "1")
    shown = runner.invoke(app, ["config", "show"])
    assert shown.exit_code == 0, shown.output


def test_profiles_not_found_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("NPC_HOST_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    missed = runner.invoke(app, ["profiles", "check"])
    assert missed.exit_code == 1
    assert "profiles folder not found" in missed.output and "NPC_HOST_PROFILES_DIR" in missed.output


def test_the_plain_log_format_is_one_line_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(Settings(log_format="plain"))
    log = logging.getLogger("host.test")
    log.warning("first line\nsecond line of the same record")
    try:
        raise ValueError("broken")
    except ValueError:
        log.exception("it failed")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("WARNING host.test: first line\\nsecond line of the same record")
    assert "it failed\\nTraceback" in lines[1] and "ValueError: broken" in lines[1]


def test_the_json_log_format_is_one_object_per_record(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(Settings(log_format="json"))
    logging.getLogger("host.test").info("ready: %s", "bridge")
    (line,) = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"], record["message"]) == ("INFO", "host.test", "ready: bridge")
    assert record["time"].endswith("+00:00")
