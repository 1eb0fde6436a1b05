"""Hot reload: edits under the profiles folder apply to the next lookup; a broken edit keeps the last good version."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import pytest_asyncio

from host.profiles.problems import Problem
from host.profiles.registry import ProfileRegistry, UnknownNpcError

WAIT_S = 30.0  # a deadline so a broken watcher fails the test instead of hanging it


@pytest.fixture
def profiles_root(tmp_path: Path, repo_root: Path) -> Path:
    shutil.copytree(repo_root / "npc_profiles" / "example", tmp_path / "profiles" / "example")
    return tmp_path / "profiles"


# The watcher task must live on the test's own event loop.
@pytest_asyncio.fixture(loop_scope="function")
async def registry(profiles_root: Path) -> AsyncIterator[ProfileRegistry]:
    registry = ProfileRegistry(profiles_root, debounce_ms=50)
    assert await registry.start() == []
    yield registry
    await registry.stop()


async def eventually(registry: ProfileRegistry, condition: Callable[[], bool]) -> None:
    """Wait for the watcher to reload the profiles until `condition` holds."""
    reloaded = asyncio.Event()
    registry.on_reload.append(reloaded.set)
    async with asyncio.timeout(WAIT_S):
        while not condition():
            await reloaded.wait()
            reloaded.clear()


def problem_queue(registry: ProfileRegistry) -> asyncio.Queue[list[Problem]]:
    queue: asyncio.Queue[list[Problem]] = asyncio.Queue()
    registry.on_problems.append(queue.put_nowait)
    return queue


async def test_an_edit_applies_to_the_next_lookup(registry: ProfileRegistry, profiles_root: Path) -> None:
    assert registry.npc("example", "bram").name == "Bram"
    bram = profiles_root / "example" / "bram.toml"
    bram.write_text(bram.read_text().replace('name = "Bram"', 'name = "Bram the Bold"'))
    await eventually(registry, lambda: registry.npc("example", "bram").name == "Bram the Bold")


async def test_a_broken_edit_keeps_the_last_good_version(registry: ProfileRegistry, profiles_root: Path) -> None:
    problems = problem_queue(registry)
    bram = profiles_root / "example" / "bram.toml"
    bram.write_text(bram.read_text().replace('name = "Bram"', 'name = "Bram the Broken"\nnmae = "typo"'))
    reported = await asyncio.wait_for(problems.get(), WAIT_S)
    assert [str(p) for p in reported] == [f"{bram}:5: nmae: unknown field; did you mean 'name'?"]
    assert registry.npc("example", "bram").name == "Bram"
    assert sorted(registry.npcs("example")) == ["birch", "bram", "hilde"]


async def test_a_new_file_adds_an_npc_and_a_deleted_one_removes_it(
    registry: ProfileRegistry, profiles_root: Path
) -> None:
    folder = profiles_root / "example"
    (folder / "birch.toml").rename(folder / "oak.toml.bak")
    await eventually(registry, lambda: "birch" not in registry.npcs("example"))
    with pytest.raises(UnknownNpcError, match="server 'example' has no NPC 'birch'"):
        registry.npc("example", "birch")
    (folder / "oak.toml.bak").rename(folder / "birch.toml")
    await eventually(registry, lambda: "birch" in registry.npcs("example"))


async def test_a_server_folder_moved_in_appears(registry: ProfileRegistry, profiles_root: Path, tmp_path: Path) -> None:
    # Moving (or unpacking) a finished folder into place raises one event, for the folder: none for its files.
    staged = tmp_path / "staged-tavern"
    staged.mkdir()
    (staged / "server.toml").write_text('name = "tavern"\ngame = "table"\n')
    staged.rename(profiles_root / "tavern")
    await eventually(registry, lambda: "tavern" in registry.server_names())
    assert registry.server("tavern").game == "table"


async def test_a_broken_server_toml_keeps_the_server(registry: ProfileRegistry, profiles_root: Path) -> None:
    problems = problem_queue(registry)
    server = profiles_root / "example" / "server.toml"
    server.write_text(server.read_text().replace('game = "minecraft"', 'game = "terraria"'))
    reported = await asyncio.wait_for(problems.get(), WAIT_S)
    assert [p.field for p in reported] == ["game"]
    assert registry.server("example").game == "minecraft"
    assert sorted(registry.npcs("example")) == ["birch", "bram", "hilde"]


async def test_reload_applies_changes_without_a_watcher(profiles_root: Path) -> None:
    registry = ProfileRegistry(profiles_root)
    await registry.reload()
    hilde = profiles_root / "example" / "hilde.toml"
    hilde.write_text(hilde.read_text().replace("hearing_range = 12.0", "hearing_range = 9.5"))
    assert registry.npc("example", "hilde").world.hearing_range == 12.0
    assert await registry.reload() == []
    assert registry.npc("example", "hilde").world.hearing_range == 9.5
    assert registry.server_names() == ["example"]
    with pytest.raises(UnknownNpcError, match="no server named 'elsewhere'"):
        registry.npc("elsewhere", "hilde")
