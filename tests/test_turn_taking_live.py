"""Turn taking on the path a player meets: the real roles (bridge, speech, brain) on the packaged models, a recorded
player talking through the reference plugin, which sends nothing after the last frame (`VoiceScene`).

Both ways the endpoint moves are live here at once: the bridge ends a line whose speculative transcript sounds
finished sooner, and the speech role holds one that sounds unfinished. The question with a pause at its comma must
still be answered whole, whichever of the two acts first on the busy machine the test runs on; a question without
such a pause is answered as it was said."""

from __future__ import annotations

import pytest

from bench.village import SERVER, example_village
from host.demo_assets import load_manifest
from host.events import Position
from host.speech.audio import conform, read_wav, without_trailing_silence
from host.speech.stt import word_error_rate
from host.voice.scene import SceneTurn, VoiceScene
from proximity_audio.protocol import SAMPLE_RATE

pytestmark = pytest.mark.timeout(900)  # models load and the scene plays in real time on a crowded machine


async def test_questions_are_answered_whole_with_the_endpoint_moving_both_ways() -> None:
    manifest = load_manifest()
    async with example_village("turn-taking") as services, VoiceScene(services, SERVER) as scene:
        await scene.ready()
        bram = services.registry.npcs(SERVER)["bram"].world.position
        at_the_bar = Position(x=bram.x + 1.5, y=bram.y, z=bram.z)

        async def say(file: str) -> list[SceneTurn]:
            recorded = conform(read_wav(manifest.get(file).path), SAMPLE_RATE)
            return await scene.say("Alice", at_the_bar, without_trailing_silence(recorded))

        for file in ("comma_pause.wav", "bram_room.wav", "comma_pause.wav"):
            turns = await say(file)
            question = manifest.get(file).text
            assert [turn.npc for turn in turns] == ["bram"], [turn.said.text for turn in turns]
            assert word_error_rate(question, turns[0].said.text) <= 0.2, turns[0].said.text
            assert turns[0].reply
