"""What the roles of one process share: settings, the hub, the store, the profiles, the transcripts.

Opened once per process; every connection fails fast with one clear line when its URL is wrong.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from host.bus import Bus, make_bus
from host.bus.streams import consumer_name
from host.config import Settings
from host.errors import NpcHostError
from host.memory_guard import MemoryGuard, ceiling_bytes
from host.profiles.problems import Problem
from host.profiles.registry import ProfileRegistry
from host.roles.health import BOARD
from host.roles.startup import StartupProgress
from host.store import Store
from host.transcript.book import TranscriptBook
from host.voice.first_audio import FirstAudioSignal
from host.voice.speech_ahead import SpeechAhead

log = logging.getLogger(__name__)


@dataclass
class HostServices:
    settings: Settings
    bus: Bus
    store: Store
    registry: ProfileRegistry
    transcripts: TranscriptBook
    progress: StartupProgress = field(default_factory=StartupProgress)
    # Above its ceiling the bridge refuses new connections, players and voice pages; `npc-host run` keeps it read.
    memory: MemoryGuard = field(default_factory=lambda: MemoryGuard(None))
    first_audio: FirstAudioSignal = field(default_factory=FirstAudioSignal)  # speech -> brain, within this process
    speech_ahead: SpeechAhead = field(default_factory=SpeechAhead)  # brain -> speech, within this process

    @classmethod
    async def open(cls, settings: Settings, *, watch_profiles: bool = True) -> HostServices:
        registry = ProfileRegistry(settings.profiles_dir)
        async with contextlib.AsyncExitStack() as opened:
            # What opened before a failure is closed again (the profile watcher, the database pool).
            opened.push_async_callback(registry.stop)
            problems = await registry.start() if watch_profiles else await registry.reload()
            _report(problems)
            if not registry.server_names():
                raise NpcHostError(
                    f"no server profiles could be loaded from {settings.profiles_dir}", code="no_servers"
                )
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            store = await Store.open(settings.effective_database_url)
            opened.push_async_callback(store.close)
            bus = await make_bus(settings, client_name=consumer_name("host"))
            opened.pop_all()
        memory = MemoryGuard(ceiling_bytes(settings.memory_ceiling_mb), board=BOARD)
        return cls(settings, bus, store, registry, TranscriptBook(settings.transcripts_dir), memory=memory)

    async def aclose(self) -> None:
        async with contextlib.AsyncExitStack() as closing:
            # Run last-pushed first, each even when one before it fails (a hub connection already gone).
            closing.push_async_callback(self.registry.stop)
            closing.push_async_callback(self.store.close)
            closing.push_async_callback(self.transcripts.aclose)
            closing.push_async_callback(self.bus.aclose)


def _report(problems: list[Problem]) -> None:
    for problem in problems:
        log.error("profile problem: %s", problem)
