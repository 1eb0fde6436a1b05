"""`!npc` admin commands: parsing, usage errors and the operator check."""

from __future__ import annotations

import pytest

from host.profiles.schema import ServerProfile
from integrations.minecraft.admin_commands import (
    AdminCommandError,
    AdminRefusedError,
    ListNpcs,
    NoteNpc,
    PauseNpc,
    Reload,
    ResumeNpc,
    SayNpc,
    TeleportNpcHere,
    is_admin_command,
    parse_admin_command,
)

SERVER = ServerProfile(name="village", operators=["Op_Alice"])
NPCS = {"bram", "ada"}


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("!npc list", ListNpcs(operator="Op_Alice")),
        ("!npc reload", Reload(operator="Op_Alice")),
        ("!npc pause bram", PauseNpc(operator="Op_Alice", npc="bram")),
        ("  !npc   RESUME   Bram ", ResumeNpc(operator="Op_Alice", npc="bram")),
        (
            "!npc note bram The mill burned down; be sad.",
            NoteNpc(operator="Op_Alice", npc="bram", text="The mill burned down; be sad."),
        ),
        ('!npc say ada Welcome, "traveller"!', SayNpc(operator="Op_Alice", npc="ada", text='Welcome, "traveller"!')),
        ("!npc tp bram here", TeleportNpcHere(operator="Op_Alice", npc="bram")),
    ],
)
def test_commands_parse(line: str, command: object) -> None:
    assert is_admin_command(line)
    assert parse_admin_command("Op_Alice", line, SERVER, NPCS) == command


def test_operator_names_are_case_insensitive() -> None:
    assert parse_admin_command("op_alice", "!npc list", SERVER) == ListNpcs(operator="op_alice")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("!npc", "usage: !npc list | pause"),
        ("!npc dance bram", "unknown action 'dance'"),
        ("!npc pause", "usage: !npc pause <id>"),
        ("!npc pause bram now", "usage: !npc pause <id>"),
        ("!npc list everything", "usage: !npc list"),
        ("!npc note bram", "usage: !npc note <id> <text>"),
        ("!npc say", "usage: !npc say <id> <text>"),
        ("!npc tp bram there", "usage: !npc tp <id> here"),
        ("!npc pause zed", "no NPC with id 'zed'; known: ada, bram"),
        ("!npc note bram " + "x" * 600, "text too long"),
    ],
)
def test_usage_errors(line: str, message: str) -> None:
    with pytest.raises(AdminCommandError, match="^" + message.replace("|", r"\|").replace("(", r"\(")):
        parse_admin_command("Op_Alice", line, SERVER, NPCS)


def test_non_operators_are_refused_before_parsing() -> None:
    with pytest.raises(AdminRefusedError, match="only this server's operators"):
        parse_admin_command("Mallory", "!npc say bram I am the king", SERVER, NPCS)


@pytest.mark.parametrize("line", ["hello !npc list", "!npcs list", "!NPC list", "npc list"])
def test_other_chat_is_not_a_command(line: str) -> None:
    assert not is_admin_command(line)
