"""Helpers for the advisor tests: the example village with an `[advisor]` table, the services a pass needs, and
transcript lines of a short conversation."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from host.bus import make_bus
from host.config import Settings
from host.profiles.registry import ProfileRegistry
from host.roles.services import HostServices
from host.store import Store
from host.transcript.book import TranscriptBook
from host.transcript.lines import SpokenLine
from host.transcript.writer import now_utc
from tests.conftest import REPO_ROOT


def village_with_advisor(root: Path, advisor_table: str) -> Path:
    """A copy of the example profiles whose server.toml ends with `advisor_table` (TOML)."""
    profiles = root / "profiles"
    shutil.copytree(REPO_ROOT / "npc_profiles" / "example", profiles / "example")
    server = profiles / "example" / "server.toml"
    server.write_text(server.read_text() + "\n" + advisor_table)
    return profiles


def ollama_advisor_table(url: str, *, approval: bool = False, condense_url: str | None = None) -> str:
    return f"""
[advisor]
every_minutes = 60
after_lines = 4
approval = {str(approval).lower()}

[advisor.model]
backend = "ollama"
url = "{url}"
model = "advisor-big"

[advisor.condense]
backend = "ollama"
url = "{condense_url or url}"
model = "condense-small"
"""


def settings_for(root: Path, profiles: Path, **overrides: Any) -> Settings:
    """The paths `tests.host_process.host_env(root)` gives a child process: both see the same store and files."""
    return Settings(profiles_dir=profiles, data_dir=root / "data", transcripts_dir=root / "transcripts", **overrides)


@asynccontextmanager
async def services_for(settings: Settings) -> AsyncIterator[HostServices]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = ProfileRegistry(settings.profiles_dir)
    problems = await registry.reload()
    assert not problems, problems
    store = await Store.open(settings.effective_database_url)
    bus = await make_bus(settings)
    services = HostServices(settings, bus, store, registry, TranscriptBook(settings.transcripts_dir))
    try:
        yield services
    finally:
        await services.transcripts.aclose()
        await store.close()
        await bus.aclose()


def conversation() -> list[SpokenLine]:
    """Alice talks with Bram at the inn, Bob with Hilde at the gate."""
    ts = now_utc()
    return [
        SpokenLine(ts=ts, source="chat", speaker="Alice", addressee="bram", text="Any rooms free? I'm a blacksmith."),
        SpokenLine(ts=ts, source="npc", speaker="bram", addressee="Alice", text="Aye, one left. Two coins."),
        SpokenLine(ts=ts, source="chat", speaker="Bob", addressee="hilde", text="Can I go out at night?"),
        SpokenLine(ts=ts, source="npc", speaker="hilde", addressee="Bob", text="The gate stays shut at night."),
    ]


def advice_json(npc: str = "bram", steering: str = "Offer Alice the last room at half price.") -> str:
    return json.dumps(
        {
            "npcs": [
                {
                    "npc": npc,
                    "steering": [{"text": steering, "priority": 4, "expires_in_minutes": 30}],
                    "facts": [{"text": "Alice is a blacksmith.", "priority": 2, "expires_in_minutes": 600}],
                    "mood": {"text": "cheerful", "priority": 1, "expires_in_minutes": 60},
                    "warnings": [],
                }
            ]
        }
    )
