"""The voice bridge in the gateway role (in-process hub, no game): one port for several servers, each with its own
token, and the hub's events reaching the right players: NPC audio, silenced turns, barge-in, positions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import REGISTRY

from host.bus.streams import StreamKind, stream_for, stream_name
from host.config import Settings
from host.events import (
    EntityPosition,
    Event,
    NpcAudio,
    NpcControl,
    NpcSentence,
    NpcTurnCut,
    NpcTurnEnded,
    NpcTurnStarted,
    PlayerLeft,
    PlayerPaused,
    PlayerSaidTentative,
    PlayerSpeechStarted,
    PlayerUtterance,
    Positions,
)
from host.roles.gateway import GatewayRole
from host.roles.services import HostServices
from host.speech.audio import int16_to_pcm16, without_trailing_silence
from host.store import Store
from proximity_audio.bridge_client import BridgeClient, BridgeRefusedError
from proximity_audio.limits import BridgeLimits
from proximity_audio.protocol import FRAME_SAMPLES
from tests.bridge_support import Player, at, recording_48k, tone
from tests.bus_support import Collector, consuming, poll_until
from tests.host_process import closed_port

WAIT_S = 60.0  # a bound for a loaded machine, never a speed check
TOKENS = {"north": "north-Bridge-token", "south": "south-Bridge-token"}
RATE = 22_050
MARKER_FRAMES = 10  # 0.2 s of audio: exactly ten 20 ms frames


def _write_server(root: Path, name: str, bram_x: float) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "server.toml").write_text(
        f'name = "{name}"\n\n[bridge]\ntoken_env = "NPC_HOST_TEST_BRIDGE_{name.upper()}"\n'
    )
    (folder / "bram.toml").write_text(
        'id = "bram"\nname = "Bram"\n\n[persona]\ndescription = "An innkeeper."\n\n'
        f"[world]\nposition = {{ x = {bram_x}, y = 64.0, z = 0.0 }}\nhearing_range = 8.0\nspeaking_range = 16.0\n"
    )


@asynccontextmanager
async def running_bridge(
    tmp_path: Path, environ: Mapping[str, str], limits: BridgeLimits | None = None
) -> AsyncIterator[tuple[HostServices, str]]:
    """The gateway role on the profiles under tmp_path, without game adapters; yields the hub and the bridge URL."""
    port = closed_port()
    settings = Settings(
        profiles_dir=tmp_path / "profiles",
        data_dir=tmp_path / "data",
        transcripts_dir=tmp_path / "transcripts",
        redis_url=None,
        bridge_host="127.0.0.1",
        bridge_port=port,
        bridge=limits or BridgeLimits(),
    )
    services = await HostServices.open(settings, watch_profiles=False)
    stop = asyncio.Event()
    task = asyncio.create_task(GatewayRole(services, adapters={}, environ=environ).run(stop))
    try:
        await poll_until(lambda: _reading_audio(services, task), "the gateway reads the audio stream")
        yield services, f"ws://127.0.0.1:{port}/bridge"
    finally:
        stop.set()
        try:
            async with asyncio.timeout(WAIT_S):
                await task
        finally:
            await services.aclose()


async def _reading_audio(services: HostServices, task: asyncio.Task[None]) -> bool:
    if task.done():
        task.result()  # the role failed: raise its error here
    server = services.registry.server_names()[0]
    info = await services.bus.stream_info(stream_name(server, StreamKind.AUDIO))
    return any(group.name == "gateway" and group.consumers for group in info.groups)


async def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for: {what}")
        await asyncio.sleep(0.02)


def audio(server: str, turn_id: str, seconds: float, *, index: int = 0, ts: float | None = None) -> NpcAudio:
    pcm = int16_to_pcm16(tone(seconds, RATE))
    extra = {} if ts is None else {"ts": ts}
    return NpcAudio(server=server, npc="bram", turn_id=turn_id, index=index, audio=pcm, sample_rate=RATE, **extra)


async def _bram_at(url: str, x: float) -> bool:
    """Whether a plugin connecting now is told that Bram stands at `x`."""
    async with BridgeClient(url, server="north", token=TOKENS["north"]) as plugin:
        welcome = await plugin.connect()
    return [npc.position.x for npc in welcome.npcs] == [x]


async def test_one_port_serves_each_server_with_its_own_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name, x in (("north", 0.0), ("south", 40.0), ("west", 0.0)):
        _write_server(tmp_path / "profiles", name, x)
    environ = {"NPC_HOST_TEST_BRIDGE_NORTH": TOKENS["north"], "NPC_HOST_TEST_BRIDGE_SOUTH": TOKENS["south"]}
    caplog.set_level(logging.INFO)
    async with running_bridge(tmp_path, environ) as (_, url):
        for server, x in (("north", 0.0), ("south", 40.0)):
            async with BridgeClient(url, server=server, token=TOKENS[server]) as plugin:
                welcome = await plugin.connect()
                assert [(npc.npc, npc.position.x) for npc in welcome.npcs] == [("bram", x)]
        for server, token in (("south", TOKENS["north"]), ("west", TOKENS["north"]), ("east", TOKENS["north"])):
            async with BridgeClient(url, server=server, token=token) as plugin:
                with pytest.raises(BridgeRefusedError) as refused:
                    await plugin.connect()
                assert refused.value.code == 4001, server
    warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    said = [w for w in warnings if "'west'" in w and "NPC_HOST_TEST_BRIDGE_WEST" in w]
    assert len(said) == 1 and "voice is off" in said[0]  # once, and chat still works
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and "bridge" in r.getMessage()]
    assert not any(token in caplog.text for token in TOKENS.values())


async def test_hub_events_reach_the_players_of_their_server(tmp_path: Path) -> None:
    """Audio from the hub, stale audio, a turn ended as interrupted, a barge-in and an NPC that walks away."""
    for name in ("north", "south"):
        _write_server(tmp_path / "profiles", name, 0.0)
    environ = {"NPC_HOST_TEST_BRIDGE_NORTH": TOKENS["north"], "NPC_HOST_TEST_BRIDGE_SOUTH": TOKENS["south"]}
    async with running_bridge(tmp_path, environ) as (services, url), asyncio.TaskGroup() as tasks:
        north, south = (Player(BridgeClient(url, server=name, token=TOKENS[name])) for name in ("north", "south"))
        for player in (north, south):
            await player.client.connect()
            await player.client.join(0, "Alice", at(4, 0))  # 4 blocks from Bram on both servers
            tasks.create_task(player.listen())

        async def publish(*events: Event) -> None:
            for event in events:
                await services.bus.publish(stream_for(event), event)

        def ended(count: int) -> bool:
            streams = north.streams()
            return len(streams) == count and streams[-1][1] is not None

        def sounding(count: int) -> bool:
            streams = north.streams()
            return len(streams) == count and len(streams[-1][0]) >= 5

        # Audio from before a restart is not played; fresh audio is, to the players of its server only.
        await publish(audio("north", "old", 1.0, ts=time.time() - 600), audio("north", "t0", 0.2))
        await until(lambda: ended(1), "the first stream ended")

        # A turn the brain ended as interrupted goes silent, and its late chunks stay silent.
        await publish(NpcTurnStarted(server="north", npc="bram", player="Alice", turn_id="t1", cause_id="c1"))
        await publish(audio("north", "t1", 5.0))
        await until(lambda: sounding(2), "turn 1 sounding")
        interrupted = NpcTurnEnded(
            server="north", npc="bram", player="Alice", turn_id="t1", cause_id="c1", reply="", interrupted=True
        )
        await publish(interrupted)
        await until(lambda: ended(2), "turn 1 stopped")
        await publish(audio("north", "t1", 1.0, index=1), audio("north", "t2", 0.2))
        await until(lambda: ended(3), "the stream after turn 1")

        # Alice starts speaking: Bram's turn for her stops.
        await publish(NpcTurnStarted(server="north", npc="bram", player="Alice", turn_id="t3", cause_id="c3"))
        await publish(audio("north", "t3", 5.0))
        await until(lambda: sounding(4), "turn 3 sounding")
        await publish(PlayerSpeechStarted(server="north", player="Alice", position=at(4, 0)))
        await until(lambda: ended(4), "turn 3 stopped")

        # An operator stops Bram.
        await publish(audio("north", "t4", 5.0))
        await until(lambda: sounding(5), "turn 4 sounding")
        await publish(NpcControl(server="north", npc="bram", action="stop", author="Op_Olga"))
        await until(lambda: ended(5), "turn 4 stopped")

        # Bram walks 30 blocks away: Alice no longer hears him.
        moved = EntityPosition(name="bram", kind="npc", x=34.0, y=64.0, z=0.0)
        await publish(Positions(server="north", entities=[moved]))
        await poll_until(lambda: _bram_at(url, 34.0), "Bram moved on the bridge")
        await publish(audio("north", "t5", 0.2))
        await until(lambda: ended(6), "the stream after Bram moved")
        for player in (north, south):
            await player.client.close()

    lengths = [(len(frames), how) for frames, how in north.streams()]
    assert lengths[:3] == [(MARKER_FRAMES, "finished"), lengths[1], (MARKER_FRAMES, "finished")]
    assert lengths[1][1] == "stopped" and lengths[1][0] < 5.0 * 50
    assert [how for _, how in lengths[3:5]] == ["stopped", "stopped"] and lengths[5] == (0, "finished")
    assert south.frames() == []


async def test_barge_in_cuts_each_turn_answering_the_speaker_that_began_before_once(tmp_path: Path) -> None:
    """The bridge alone decides barge-in: a turn still being written (nothing sounding yet) is cut too, and so is one
    announced only after the player spoke that began before; turns for other players and later turns are not."""
    _write_server(tmp_path / "profiles", "north", 0.0)
    async with running_bridge(tmp_path, {"NPC_HOST_TEST_BRIDGE_NORTH": TOKENS["north"]}) as (services, _url):
        control = Collector()

        async def publish(*events: Event) -> None:
            for event in events:
                await services.bus.publish(stream_for(event), event)

        def cut() -> list[NpcTurnCut]:
            return [event for event in control.events if isinstance(event, NpcTurnCut)]

        def turn(player: str, turn_id: str, ts: float | None = None) -> NpcTurnStarted:
            extra = {} if ts is None else {"ts": ts}
            return NpcTurnStarted(server="north", npc="bram", player=player, turn_id=turn_id, cause_id="c", **extra)

        async with consuming(services.bus, stream_name("north", StreamKind.CONTROL), "observer", "o1", control):
            await publish(turn("Alice", "a1"), turn("Bob", "b1"))
            alice_spoke = PlayerSpeechStarted(server="north", player="Alice")
            await publish(alice_spoke)
            await until(lambda: [c.turn_id for c in cut()] == ["a1"], "Alice's turn was cut")
            await publish(turn("Alice", "a0", ts=alice_spoke.ts - 1.0))  # began before she spoke, announced late
            await until(lambda: [c.turn_id for c in cut()] == ["a1", "a0"], "the late turn was cut on arrival")
            await publish(turn("Alice", "a2"), PlayerSpeechStarted(server="north", player="Carol"))
            await publish(PlayerSpeechStarted(server="north", player="Bob"))
            await until(lambda: len(cut()) == 3, "Bob's turn was cut")
            # Alice speaks again: only a2 is still live (a turn already cut is never cut twice).
            await publish(PlayerSpeechStarted(server="north", player="Alice"))
            await until(lambda: len(cut()) == 4, "Alice's later turn was cut")

    assert [(c.turn_id, c.player, c.heard, c.sentences_heard) for c in cut()] == [
        ("a1", "Alice", "", 0),
        ("a0", "Alice", "", 0),
        ("b1", "Bob", "", 0),
        ("a2", "Alice", "", 0),
    ]


async def test_a_reply_heard_to_the_end_is_not_cut_when_the_player_answers_it(tmp_path: Path) -> None:
    """Talking back to an NPC after its reply finished playing is conversation, not a barge-in: that reply keeps its
    words (a cut would rewrite it as heard by nobody, in the transcript, the database and its memory)."""
    _write_server(tmp_path / "profiles", "north", 0.0)
    environ = {"NPC_HOST_TEST_BRIDGE_NORTH": TOKENS["north"]}
    async with running_bridge(tmp_path, environ) as (services, url), asyncio.TaskGroup() as tasks:
        control = Collector()

        async def publish(*events: Event) -> None:
            for event in events:
                await services.bus.publish(stream_for(event), event)

        def cut() -> list[NpcTurnCut]:
            return [event for event in control.events if isinstance(event, NpcTurnCut)]

        alice = Player(BridgeClient(url, server="north", token=TOKENS["north"]))
        await alice.client.connect()
        await alice.client.join(0, "Alice", at(4, 0))
        tasks.create_task(alice.listen())
        async with consuming(services.bus, stream_name("north", StreamKind.CONTROL), "observer", "o1", control):
            await publish(
                NpcTurnStarted(server="north", npc="bram", player="Alice", turn_id="t1", cause_id="c1"),
                NpcSentence(server="north", npc="bram", player="Alice", turn_id="t1", index=0, text="Welcome!"),
                audio("north", "t1", 0.2),
                NpcTurnEnded(server="north", npc="bram", player="Alice", turn_id="t1", cause_id="c1", reply="Welcome!"),
            )
            # Played to the end, and its stream gone from the pacer (it idles out half a second after).
            await until(lambda: [how for _, how in alice.streams()] == ["finished"], "Bram's reply heard")
            await publish(PlayerSpeechStarted(server="north", player="Alice"))
            # A later turn, cut by her next words: the hub has handled everything before it by then.
            await publish(NpcTurnStarted(server="north", npc="bram", player="Alice", turn_id="t2", cause_id="c2"))
            await publish(PlayerSpeechStarted(server="north", player="Alice"))
            await until(lambda: bool(cut()), "the later turn was cut")
        await alice.client.close()
    assert [c.turn_id for c in cut()] == ["t2"]


def first_audio_count(server: str, npc: str) -> float:
    labels = {"server": server, "npc": npc, "stage": "first_audio"}
    return REGISTRY.get_sample_value("npc_host_voice_stage_seconds_count", labels) or 0.0


async def test_the_first_audio_of_a_spoken_answer_is_measured_per_npc(tmp_path: Path) -> None:
    """The bridge stamps the moment a turn's first frame leaves: one observation per spoken turn, labelled with its
    NPC, from the player's end of speech; a typed line's turn (no end of speech) and later chunks add none."""
    _write_server(tmp_path / "profiles", "north", 0.0)
    environ = {"NPC_HOST_TEST_BRIDGE_NORTH": TOKENS["north"]}
    before = first_audio_count("north", "bram")
    async with running_bridge(tmp_path, environ) as (services, url), asyncio.TaskGroup() as tasks:
        alice = Player(BridgeClient(url, server="north", token=TOKENS["north"]))
        await alice.client.connect()
        await alice.client.join(0, "Alice", at(4, 0))
        tasks.create_task(alice.listen())
        spoken_at = time.time() - 0.5  # she stopped speaking half a second ago
        for event in (
            NpcTurnStarted(
                server="north", npc="bram", player="Alice", turn_id="t1", cause_id="c1", speech_end_ts=spoken_at
            ),
            audio("north", "t1", 0.2),
            audio("north", "t1", 0.2, index=1),
            NpcTurnStarted(server="north", npc="bram", player="Alice", turn_id="t2", cause_id="c2"),  # typed
            audio("north", "t2", 0.2),
        ):
            await services.bus.publish(stream_for(event), event)
        # One stream (the turns follow each other without a pause) that ends after the last turn's audio.
        await until(lambda: [how for _, how in alice.streams()] == ["finished"], "both turns heard")
        await alice.client.close()
    assert first_audio_count("north", "bram") == before + 1
    labels = {"server": "north", "npc": "bram", "stage": "first_audio"}
    assert (REGISTRY.get_sample_value("npc_host_voice_stage_seconds_sum", labels) or 0.0) >= 0.5


@pytest.mark.parametrize("muted_before_start", [False, True], ids=["muted-now", "muted-before-a-restart"])
async def test_a_muted_npc_is_not_heard_until_unmuted(tmp_path: Path, muted_before_start: bool) -> None:
    _write_server(tmp_path / "profiles", "north", 0.0)
    environ = {"NPC_HOST_TEST_BRIDGE_NORTH": TOKENS["north"]}
    if muted_before_start:  # as the brain records a mute: the gateway reads it when it starts
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'npc-host.db'}")
        await store.steering.set_muted("north", "bram", True)
        await store.close()
    async with running_bridge(tmp_path, environ) as (services, url), asyncio.TaskGroup() as tasks:
        alice = Player(BridgeClient(url, server="north", token=TOKENS["north"]))
        await alice.client.connect()
        await alice.client.join(0, "Alice", at(4, 0))
        tasks.create_task(alice.listen())

        async def publish(*events: Event) -> None:
            for event in events:
                await services.bus.publish(stream_for(event), event)

        control = stream_name("north", StreamKind.CONTROL)

        async def control_handled() -> bool:
            # Control and audio are separate streams: the audio must not overtake the mute it tests.
            info = await services.bus.stream_info(control)
            return any(g.name == "gateway" and g.pending == 0 and g.lag == 0 for g in info.groups)

        if not muted_before_start:
            await publish(NpcControl(server="north", npc="bram", action="mute", author="Op_Olga"))
            await poll_until(control_handled, "the mute handled")
        await publish(audio("north", "muted", 0.2))
        await asyncio.sleep(0.3)  # a played line would have started by now
        await publish(NpcControl(server="north", npc="bram", action="unmute", author="Op_Olga"))
        await poll_until(control_handled, "the unmute handled")
        await publish(audio("north", "heard", 0.2))
        await until(lambda: len(alice.streams()) == 1 and alice.streams()[0][1] is not None, "the unmuted stream")
        await asyncio.sleep(0.3)  # anything else queued would have arrived by now
        await alice.client.close()
    # One stream only: the muted line never reached Alice, the one after the unmute did, whole.
    assert [(len(frames), how) for frames, how in alice.streams()] == [(MARKER_FRAMES, "finished")]


async def test_a_player_leaving_the_bridge_is_announced_on_the_hub(tmp_path: Path) -> None:
    """The brain and speech roles forget a player who left (their last partner, their barge-in time) on this event."""
    _write_server(tmp_path / "profiles", "north", 0.0)
    left = Collector()
    async with running_bridge(tmp_path, {"NPC_HOST_TEST_BRIDGE_NORTH": TOKENS["north"]}) as (services, url):
        control = stream_name("north", StreamKind.CONTROL)
        async with consuming(services.bus, control, "observer", "o1", left):
            async with BridgeClient(url, server="north", token=TOKENS["north"]) as plugin:
                await plugin.connect()
                await plugin.join(0, "Alice", at(2, 0))
                await plugin.join(1, "Bob", at(3, 0))
                await plugin.leave(0)
                await until(lambda: bool(left.events), "Alice's leave reached the hub")
                assert [(e.server, e.player) for e in left.events if isinstance(e, PlayerLeft)] == [("north", "Alice")]
            # The plugin's connection closed: its remaining player left with it.
            await until(lambda: len(left.events) == 2, "Bob's leave reached the hub")
    assert [e.player for e in left.events if isinstance(e, PlayerLeft)] == ["Alice", "Bob"]


async def _handled_by_gateway(services: HostServices, stream: str, entry_id: str) -> bool:
    groups = [group for group in (await services.bus.stream_info(stream)).groups if group.name == "gateway"]
    return bool(groups) and not groups[0].pending and groups[0].last_delivered_id == entry_id


@pytest.mark.parametrize(
    ("heard", "ends_early"),
    [("Old Birch, how old are you?", True), ("Old Birch, when the bell rings,", False), ("Old Birch.", False)],
)
async def test_a_line_heard_as_finished_ends_after_the_shorter_silence(
    tmp_path: Path, heard: str, ends_early: bool
) -> None:
    """The speech role's speculative transcript of a pause reaches the bridge as a tentative line: a finished question
    ends its utterance after `[turn_taking] question_end_ms` (256) of silence instead of `vad.end_silence_ms` (400);
    a line that sounds unfinished, or too short to tell, waits the whole silence. The plugin sends 240 ms of silence,
    the tentative line goes out, then 80 ms more: 320 ms in all, where only the finished question has ended. The
    frames stop for at most a second, within the 2 s stall, so the silence heard is only what was sent."""
    _write_server(tmp_path / "profiles", "north", 0.0)
    environ = {"NPC_HOST_TEST_BRIDGE_NORTH": TOKENS["north"]}
    speech = without_trailing_silence(recording_48k("birch_age.wav"))
    silence = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    heard_lines = Collector()
    ended = {end: utterances_ended("north", end) for end in ("finished", "silence")}
    async with running_bridge(tmp_path, environ, BridgeLimits(stall_ms=2000)) as (services, url):
        utterances = stream_name("north", StreamKind.UTTERANCES)
        async with (
            consuming(services.bus, utterances, "observer", "o1", heard_lines),
            BridgeClient(url, server="north", token=TOKENS["north"]) as plugin,
        ):
            await plugin.connect()
            await plugin.join(0, "Alice", at(2, 0))
            sequence = await plugin.stream_microphone(0, speech)
            await plugin.send_microphones([(0, sequence + i, silence) for i in range(12)])
            sequence += 12

            def last_pause() -> PlayerPaused | None:
                pauses = [e for e in heard_lines.events if isinstance(e, PlayerPaused)]
                return pauses[-1] if len(pauses) == 2 else None  # the comma after "Old Birch", then the end

            await until(lambda: last_pause() is not None, "the pause at the end of the question")
            pause = last_pause()
            assert pause is not None
            tentative = PlayerSaidTentative(
                server="north",
                player="Alice",
                text=heard,
                utterance_id=pause.utterance_id,
                speech_end_ts=pause.speech_end_ts,
            )
            said = stream_for(tentative)
            entry = await services.bus.publish(said, tentative)
            await poll_until(lambda: _handled_by_gateway(services, said, entry), "the bridge read the tentative line")
            await plugin.send_microphones([(0, sequence + i, silence) for i in range(4)])
            sequence += 4
            if ends_early:
                await until(
                    lambda: any(isinstance(e, PlayerUtterance) for e in heard_lines.events), "the utterance ended"
                )
            else:
                await asyncio.sleep(1.0)
                assert not any(isinstance(e, PlayerUtterance) for e in heard_lines.events)
                await plugin.send_microphones([(0, sequence + i, silence) for i in range(10)])  # 520 ms in all
                await until(
                    lambda: any(isinstance(e, PlayerUtterance) for e in heard_lines.events), "the utterance ended"
                )
    (utterance,) = [e for e in heard_lines.events if isinstance(e, PlayerUtterance)]
    assert utterance.id == pause.utterance_id
    assert utterance.audio == pause.audio  # the speculative transcript is still the one to use
    end = "finished" if ends_early else "silence"
    assert utterances_ended("north", end) == ended[end] + 1  # what operators see of it


def utterances_ended(server: str, end: str) -> float:
    return REGISTRY.get_sample_value("npc_host_utterances_ended_total", {"server": server, "end": end}) or 0.0
