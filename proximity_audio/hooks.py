"""The bridge's integration surface towards the rest of the host: what it reports, as plain callbacks.

The gateway role wires these to the event hub (publish `PlayerUtterance`, trigger barge-in, cancel a turn); the
bridge itself imports nothing from the brain, store or model layers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from host.events import PlayerUtterance, Position

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class SpeechStart:
    """A player whom at least one NPC hears started speaking (lasted VAD's minimum): the cue for barge-in."""

    server: str
    player: str
    position: Position
    npcs: list[str] = field(default_factory=list)  # NPCs hearing the player, nearest first
    utterance_id: str = ""
    wall_ts: float = 0.0


OnUtterance = Callable[[PlayerUtterance], Awaitable[None]]
OnSpeechStarted = Callable[[SpeechStart], Awaitable[None]]
OnNpcStop = Callable[[str], Awaitable[None]]


async def _ignore(_: object) -> None:
    return None


@dataclass(frozen=True)
class BridgeHooks:
    on_utterance: OnUtterance
    on_speech_started: OnSpeechStarted = _ignore
    on_npc_stop: OnNpcStop = _ignore  # the plugin asked to stop an NPC (its audio is already cut)


async def call_safely(what: str, hook: Callable[[T], Awaitable[None]], argument: T) -> None:
    """Run a hook; a failing hook is logged and never takes the player's connection down with it."""
    try:
        await hook(argument)
    except Exception:
        log.exception("bridge %s hook failed", what)
