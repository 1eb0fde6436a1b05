"""Integration discovery through the `npc_host.integrations` entry points, with a real third-party distribution."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from integrations.base import GameAdapter, IntegrationError, adapter_for, discover_adapters
from integrations.minecraft.adapter import MinecraftAdapter

PLUGIN = """
from host.events import Event
from integrations.base import GameAdapter, Publish


class TerrariaAdapter(GameAdapter):
    consumes = frozenset({"npc_sentence"})
    produces = frozenset({"player_said"})

    async def start(self, publish: Publish) -> None:
        pass

    async def handle(self, event: Event) -> None:
        pass

    async def stop(self) -> None:
        pass


class NotAnAdapter:
    pass
"""


def _install(site: Path, module: str, entry_points: str) -> None:
    (site / f"{module}.py").write_text(PLUGIN)
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[npc_host.integrations]\n{entry_points}\n")


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("npc_host_plugin")]:
        del sys.modules[name]


def test_builtin_minecraft_adapter_is_registered() -> None:
    assert discover_adapters()["minecraft"] is MinecraftAdapter
    assert issubclass(MinecraftAdapter, GameAdapter)
    assert {"npc_sentence", "npc_turn_started"} <= MinecraftAdapter.consumes
    assert {"player_said", "positions"} <= MinecraftAdapter.produces


def test_third_party_package_adds_a_game(site: Path) -> None:
    _install(site, "npc_host_plugin_terraria", "terraria = npc_host_plugin_terraria:TerrariaAdapter")
    adapter = adapter_for("terraria")
    assert adapter.__name__ == "TerrariaAdapter"
    assert adapter.produces == frozenset({"player_said"})


def test_unknown_game_lists_the_installed_ones() -> None:
    with pytest.raises(IntegrationError, match=r"no integration for game 'factorio'.*minecraft"):
        adapter_for("factorio")


def test_a_plugin_that_is_not_an_adapter_is_named(site: Path) -> None:
    _install(site, "npc_host_plugin_bad", "bad = npc_host_plugin_bad:NotAnAdapter")
    with pytest.raises(IntegrationError, match=r"integration 'bad' \(npc_host_plugin_bad:NotAnAdapter\) is not"):
        adapter_for("bad")


def test_a_plugin_that_fails_to_import_is_named(site: Path) -> None:
    _install(site, "npc_host_plugin_broken", "broken = npc_host_plugin_broken_missing:Thing")
    with pytest.raises(IntegrationError, match=r"integration 'broken' .* failed to load"):
        adapter_for("broken")


def test_a_broken_plugin_never_stops_the_other_games(site: Path, caplog: pytest.LogCaptureFixture) -> None:
    _install(site, "npc_host_plugin_broken", "broken = npc_host_plugin_broken_missing:Thing")
    adapters = discover_adapters()
    assert adapters["minecraft"] is MinecraftAdapter
    assert "broken" not in adapters
    assert "integration 'broken'" in caplog.text
