"""`npc-host db current|upgrade` when the database cannot be reached: one line, exit 1, never the password."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

import host.cli.db_cmd  # noqa: F401  (registers the commands on the app)
from host.cli import app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["current", "upgrade"])
def test_an_unreachable_database_is_one_line_without_the_password(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://npc:hunter2-db@127.0.0.1:{_closed_port()}/npc"
    monkeypatch.setenv("NPC_HOST_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["db", command])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert "127.0.0.1" in result.stderr
    assert "hunter2" not in result.output
