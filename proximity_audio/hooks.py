"""The bridge's integration surface towards the rest of the host: what it reports, as plain callbacks.

The gateway role wires these to the event hub (publish `PlayerUtterance`, trigger barge-in, cancel a turn); the
bridge itself imports nothing from the brain, store or model layers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from host.events import PlayerPaused, PlayerSaid, PlayerSpeechStarted, PlayerUtterance

log = logging.getLogger(__name__)
T = TypeVar("T")


OnUtterance = Callable[[PlayerUtterance], Awaitable[None]]
OnSpeechStarted = Callable[[PlayerSpeechStarted], Awaitable[None]]
OnSpeechPaused = Callable[[PlayerPaused], Awaitable[None]]
OnNpcStop = Callable[[str], Awaitable[None]]
OnChat = Callable[[PlayerSaid], Awaitable[None]]


async def ignore(_: object) -> None:
    """The default for hooks nobody listens to."""


@dataclass(frozen=True)
class BridgeHooks:
    """The speech hooks fire only for players within the hearing range of at least one NPC."""

    on_utterance: OnUtterance
    on_speech_started: OnSpeechStarted = ignore  # the cue for barge-in
    on_npc_stop: OnNpcStop = ignore  # the plugin asked to stop an NPC (its audio is cut when the hook returns)
    on_chat: OnChat = ignore  # a voice page's player typed a line
    on_speech_paused: OnSpeechPaused = ignore  # the cue for speculative STT


async def call_safely(what: str, hook: Callable[[T], Awaitable[None]], argument: T) -> None:
    """Run a hook; a failing hook is logged and never takes the player's connection down with it."""
    try:
        await hook(argument)
    except Exception:
        log.exception("bridge %s hook failed", what)
