"""`npc-host rcon SERVER COMMAND`, run as a real process against the RCON double."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from tests.doubles.rcon_server import RconTestServer

PASSWORD = "cli-pw-Secret"
VARIABLE = "NPC_HOST_TEST_RCON_PASSWORD"


@pytest_asyncio.fixture(loop_scope="function")
async def server() -> AsyncIterator[RconTestServer]:
    async with RconTestServer(
        PASSWORD, lambda command: f"There are 0 of a max of 20 players online: ({command})"
    ) as srv:
        yield srv


def _profiles(tmp_path: Path, port: int) -> Path:
    folder = tmp_path / "profiles" / "village"
    folder.mkdir(parents=True)
    (folder / "server.toml").write_text(
        f'name = "village"\n\n[rcon]\nhost = "127.0.0.1"\nport = {port}\npassword_env = "{VARIABLE}"\n'
    )
    return tmp_path / "profiles"


async def _cli(
    profiles: Path, *args: str, password: str | None, config: dict[str, str] | None = None
) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    env |= {"NPC_HOST_PROFILES_DIR": str(profiles), **(config or {})}
    if password is not None:
        env[VARIABLE] = password
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "host",
        "rcon",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_runs_one_command_and_prints_the_reply(server: RconTestServer, tmp_path: Path) -> None:
    code, out, _err = await _cli(_profiles(tmp_path, server.port), "village", "list", "uuids", password=PASSWORD)
    assert code == 0
    assert out == "There are 0 of a max of 20 players online: (list uuids)\n"
    assert server.commands == ["list uuids"]


async def test_unset_password_variable_is_named(server: RconTestServer, tmp_path: Path) -> None:
    code, out, err = await _cli(_profiles(tmp_path, server.port), "village", "list", password=None)
    assert code == 1
    assert out == ""
    assert VARIABLE in err and "not set" in err
    assert server.commands == []


async def test_wrong_password_is_reported_without_it(server: RconTestServer, tmp_path: Path) -> None:
    wrong = "not-the-" + PASSWORD
    code, out, err = await _cli(_profiles(tmp_path, server.port), "village", "list", password=wrong)
    assert code == 1
    assert "rejected the password" in err
    assert wrong not in out + err
    assert server.commands == []


async def test_unknown_server(server: RconTestServer, tmp_path: Path) -> None:
    code, _out, err = await _cli(_profiles(tmp_path, server.port), "castle", "list", password=PASSWORD)
    assert code == 1
    assert "no server named 'castle'" in err


async def test_a_bad_setting_is_named_without_a_traceback(server: RconTestServer, tmp_path: Path) -> None:
    profiles = _profiles(tmp_path, server.port)
    code, _out, err = await _cli(profiles, "village", "list", password=PASSWORD, config={"NPC_HOST_LOG_LEVEL": "LOUD"})
    assert code == 2
    assert "config: log_level:" in err
    assert "Traceback" not in err
    assert server.commands == []


async def test_an_error_reply_is_printed_and_exits_non_zero(server: RconTestServer, tmp_path: Path) -> None:
    server.handler = lambda command: f"Unknown or incomplete command, see below for error{command}<--[HERE]"
    code, out, err = await _cli(_profiles(tmp_path, server.port), "village", "lsit", password=PASSWORD)
    assert code == 1
    assert "lsit<--[HERE]" in out
    assert "the server answered with an error (unknown_command)" in err
