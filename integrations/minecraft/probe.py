"""At every RCON connection: does this server accept the commands the host relies on?

A plugin, a mod or a command-blocking data pack can remove a command; the server then answers "Unknown or incomplete
command". Each probe is parsed by the server but changes nothing: it targets the tag `npc_host.probe`, which no entity
carries, and `summon` is only parsed behind an `execute if` that fails.
"""

from __future__ import annotations

import logging

from integrations.minecraft.rcon import CommandRunner
from integrations.minecraft.replies import error_reason

log = logging.getLogger(__name__)

_NOBODY = "@e[tag=npc_host.probe,limit=1]"

# command name -> (a command that only parses, what the host cannot do without it)
PROBES: dict[str, tuple[str, str]] = {
    "execute": (f"execute if entity {_NOBODY}", "NPCs cannot speak, turn or be checked"),
    "tellraw": (
        'tellraw @e[type=minecraft:player,tag=npc_host.probe] {"text":""}',
        "NPC lines and answers to !npc cannot be shown",
    ),
    "summon": (f"execute if entity {_NOBODY} run summon armor_stand ~ ~ ~", "NPC bodies cannot appear"),
    "data": (f"data get entity {_NOBODY}", "player positions cannot be read, so nobody is heard"),
}
_MISSING = frozenset({"unknown_command", "incorrect_argument"})


async def missing_commands(run: CommandRunner) -> list[str]:
    """The names of the relied-on commands this server does not accept."""
    missing = []
    for name, (command, _without) in PROBES.items():
        if error_reason(await run(command)) in _MISSING:
            missing.append(name)
    return missing


async def probe_commands(run: CommandRunner, server: str) -> list[str]:
    """Probe and say plainly what is missing (one error line); returns the missing command names."""
    missing = await missing_commands(run)
    if missing:
        consequences = "; ".join(f"{name}: {PROBES[name][1]}" for name in missing)
        log.error("server '%s' does not accept %s over RCON (%s)", server, ", ".join(missing), consequences)
    else:
        log.info("server '%s' accepts %s over RCON", server, ", ".join(PROBES))
    return missing
