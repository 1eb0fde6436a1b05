"""What a server answered: vanilla's error replies turned into typed errors, counted and logged once.

Over RCON a command's messages are concatenated with no separator, and an error is just text: a parse error reads
`Unknown or incomplete command, see below for error` + the command up to the fault + `<--[HERE]`. So every reply the
host depends on goes through `check_reply`, which matches vanilla 1.21's fixed English error strings (the server's
language file is English; RCON has no locale). The error names the command *kind* (`tellraw`, `summon`, ...) and
the reason, never the reply itself: a parse error echoes the command, and the command may carry a player's words.
"""

from __future__ import annotations

import logging
import re

from prometheus_client import Counter

from integrations.minecraft.rcon import CommandRunner, RconError

log = logging.getLogger(__name__)

COMMAND_ERRORS = Counter(
    "npc_host_minecraft_command_errors_total",
    "Commands a Minecraft server answered with an error, by command kind and reason",
    ["kind", "reason"],
)

# Vanilla 1.21 (en_us) error texts, most specific first; `reason` is the stable machine code.
_ERRORS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern))
    for reason, pattern in (
        ("unknown_command", r"Unknown or incomplete command, see below for error"),
        ("incorrect_argument", r"Incorrect argument for command"),
        ("no_player", r"No player was found"),
        ("no_entity", r"No entity was found"),
        ("unknown_player", r"That player does not exist"),
        ("not_loaded", r"That position is not loaded"),
        ("out_of_world", r"That position is out of this world!"),
        ("invalid_position", r"Invalid position for (?:summon|teleport)"),
        ("summon_failed", r"Unable to summon entity"),
        ("unknown_item", r"Unknown item '"),
        ("too_many_items", r"Can't give more than \d+ of "),
        ("no_data", r"Found no elements matching "),
        ("player_required", r"A player is required to run this command here"),
        ("command_failed", r"An unexpected error occurred trying to execute that command"),
        ("test_failed", r"^Test failed"),
        ("parse_error", r"^(?:Expected |Invalid |Unknown |Unclosed |Unexpected )|<--\[HERE\]"),
    )
)


class CommandRejectedError(RconError):
    """The server ran the command's parser or the command, and answered with an error."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"the server rejected a {kind} command ({reason})", code=f"mc_{reason}")
        self.kind = kind
        self.reason = reason


def error_reason(reply: str) -> str | None:
    """The machine code of a vanilla error reply, or None when the reply is not an error."""
    text = reply.strip()
    for reason, pattern in _ERRORS:
        if pattern.search(text):
            return reason
    return None


def check_reply(kind: str, reply: str, *, expected: frozenset[str] = frozenset()) -> str:
    """`reply` when it is not an error (or an error in `expected`, e.g. `no_entity` for a `kill` of a body that is not
    there); otherwise count it, log one warning naming `kind` and the reason, and raise `CommandRejectedError`."""
    reason = error_reason(reply)
    if reason is None or reason in expected:
        return reply
    COMMAND_ERRORS.labels(kind=kind, reason=reason).inc()
    error = CommandRejectedError(kind, reason)
    log.warning("%s", error.message)
    raise error


async def run_checked(run: CommandRunner, kind: str, command: str, *, expected: frozenset[str] = frozenset()) -> str:
    """Run `command` through `run` (an `RconClient.command` or a connect hook's runner) and check its reply."""
    return check_reply(kind, await run(command), expected=expected)
