"""In-game admin commands: `!npc ...` chat lines from the server's operators, parsed into typed commands.

    !npc list | pause <id> | resume <id> | note <id> <text> | say <id> <text> | tp <id> here | reload
    !npc act <id> <action>    (follow [player] | walk <place> | look [player] | give <n> <item> | stop)
    !npc stop <id>            (ends the NPC's follow or walk)

A pure parser plus the operator check; what each command does is the host's business. Errors carry a short usage
line that can be sent back to the operator as is.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from host.errors import NpcHostError
from host.profiles.schema import ServerProfile

PREFIX = "!npc"
USAGE = (
    "usage: !npc list | pause <id> | resume <id> | note <id> <text> | say <id> <text> | tp <id> here | "
    "act <id> <action> | stop <id> | reload"
)
MAX_TEXT = 500


class AdminCommandError(NpcHostError):
    code = "admin_usage"


class AdminRefusedError(NpcHostError):
    code = "admin_refused"


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    operator: str


class ListNpcs(_Command):
    action: Literal["list"] = "list"


class Reload(_Command):
    action: Literal["reload"] = "reload"


class PauseNpc(_Command):
    action: Literal["pause"] = "pause"
    npc: str


class ResumeNpc(_Command):
    action: Literal["resume"] = "resume"
    npc: str


class NoteNpc(_Command):
    action: Literal["note"] = "note"
    npc: str
    text: str


class SayNpc(_Command):
    action: Literal["say"] = "say"
    npc: str
    text: str


class ActNpc(_Command):
    action: Literal["act"] = "act"
    npc: str
    text: str


class StopNpc(_Command):
    action: Literal["stop"] = "stop"
    npc: str


class TeleportNpcHere(_Command):
    action: Literal["tp"] = "tp"
    npc: str


AdminCommand = Annotated[
    ListNpcs | Reload | PauseNpc | ResumeNpc | NoteNpc | SayNpc | TeleportNpcHere | ActNpc | StopNpc,
    Field(discriminator="action"),
]

_USAGE_BY_ACTION = {
    "list": "!npc list",
    "reload": "!npc reload",
    "pause": "!npc pause <id>",
    "resume": "!npc resume <id>",
    "note": "!npc note <id> <text>",
    "say": "!npc say <id> <text>",
    "tp": "!npc tp <id> here",
    "act": "!npc act <id> follow [player] | walk <place> | look [player] | give <n> <item> | stop",
    "stop": "!npc stop <id>",
}


def is_admin_command(text: str) -> bool:
    head = text.lstrip()
    return head == PREFIX or head.startswith(PREFIX + " ")


def is_operator(player: str, server: ServerProfile) -> bool:
    # Minecraft treats names case-insensitively: no two accounts differ only by case.
    return player.casefold() in {op.casefold() for op in server.operators}


def parse_admin_command(
    player: str, text: str, server: ServerProfile, npc_ids: Collection[str] | None = None
) -> AdminCommand:
    """The command in an operator's `!npc` chat line. Non-operators are refused before anything is parsed."""
    if not is_operator(player, server):
        raise AdminRefusedError("only this server's operators can use !npc")
    words = text.split()
    if not words or words[0] != PREFIX:
        raise AdminCommandError(USAGE)
    if len(words) == 1:
        raise AdminCommandError(USAGE)
    action, args = words[1].lower(), words[2:]
    if action not in _USAGE_BY_ACTION:
        raise AdminCommandError(f"unknown action {action[:20]!r}; {USAGE}")
    usage = f"usage: {_USAGE_BY_ACTION[action]}"
    if action in {"list", "reload"}:
        if args:
            raise AdminCommandError(usage)
        return ListNpcs(operator=player) if action == "list" else Reload(operator=player)
    if not args:
        raise AdminCommandError(usage)
    npc = args[0].lower()
    if npc_ids is not None and npc not in npc_ids:
        raise AdminCommandError(f"no NPC with id {npc[:32]!r}; known: {', '.join(sorted(npc_ids)) or 'none'}")
    rest = text.split(None, 3)[3] if len(args) > 1 else ""
    match action:
        case "pause" | "resume" | "stop":
            if rest:
                raise AdminCommandError(usage)
            if action == "stop":
                return StopNpc(operator=player, npc=npc)
            return PauseNpc(operator=player, npc=npc) if action == "pause" else ResumeNpc(operator=player, npc=npc)
        case "tp":
            if rest.lower() != "here":
                raise AdminCommandError(usage)
            return TeleportNpcHere(operator=player, npc=npc)
        case _:
            if not rest.strip():
                raise AdminCommandError(usage)
            if len(rest) > MAX_TEXT:
                raise AdminCommandError(f"text too long ({len(rest)} characters, at most {MAX_TEXT})")
            if action == "note":
                return NoteNpc(operator=player, npc=npc, text=rest)
            if action == "say":
                return SayNpc(operator=player, npc=npc, text=rest)
            return ActNpc(operator=player, npc=npc, text=rest)
