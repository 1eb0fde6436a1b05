"""The example village on a scratch copy, for the benchmarks that run the real roles (voice, soak)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from host.config import Settings
from host.llm.factory import close_all
from host.roles.services import HostServices
from host.voice.scene import free_port

SERVER = "example"
PROFILES = Path(__file__).resolve().parent.parent / "npc_profiles" / SERVER


@asynccontextmanager
async def example_village(name: str) -> AsyncIterator[HostServices]:
    """The host's services on a throwaway copy of the village (profiles, database, transcripts), its bridge on a free
    port of 127.0.0.1: a benchmark never touches the working tree's data nor listens beyond this machine."""
    with tempfile.TemporaryDirectory(prefix=f"npc-host-bench-{name}-") as scratch:
        shutil.copytree(PROFILES, Path(scratch) / "profiles" / SERVER)
        settings = Settings(
            profiles_dir=Path(scratch) / "profiles",
            data_dir=Path(scratch) / "data",
            transcripts_dir=Path(scratch) / "transcripts",
            bridge_host="127.0.0.1",
            bridge_port=free_port(),
        )
        services = await HostServices.open(settings, watch_profiles=False)
        try:
            yield services
        finally:
            await services.aclose()
            await close_all()
