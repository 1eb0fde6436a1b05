"""Make the recorded player questions in host/demo_assets/ (run once; the results are committed).

    ORT_DISABLE_TELEMETRY=1 .venv/bin/python scripts/make_demo_assets.py

Each question is spoken by Piper's packaged voice with variation 0 (no generator noise, so a rerun on the same
machine gives the same samples), resampled to 16 kHz mono and framed by silence the way a player's microphone
segment would be. `two_questions.wav` holds two questions with one second of silence between them, for the VAD split;
`comma_pause.wav` one question said in two breaths, with a 0.3 s pause at its comma (on top of the silence Piper leaves
around each part), which an endpoint that does not listen to what was said takes for the end of the question.
"""

from __future__ import annotations

import asyncio

import numpy as np

from host.demo_assets import ASSETS_DIR, MANIFEST_PATH, Manifest, Recording
from host.profiles.schema import VoiceSpec
from host.speech.audio import WHISPER_RATE, Int16Array, pcm16_to_int16, resample, write_wav
from host.speech.tts import PiperSynthesizer

LEAD_SILENCE_S = 0.3
TAIL_SILENCE_S = 0.6
GAP_SILENCE_S = 1.0
COMMA_PAUSE_S = 0.3

QUESTIONS: list[tuple[str, str, str | None, list[str]]] = [
    ("bram_room.wav", "Alice", "bram", ["Bram, do you have a room for the night?"]),
    ("hilde_road.wav", "Bob", "hilde", ["Hilde, is the road to the mine safe?"]),
    ("birch_age.wav", "Alice", "birch", ["Old Birch, how old are you?"]),
    ("two_questions.wav", "Bob", "bram", ["Bram, how much is a mug of ale?", "And who keeps watch at the gate?"]),
]
# One utterance said in parts, with COMMA_PAUSE_S between them.
PAUSED_QUESTIONS: list[tuple[str, str, str | None, list[str]]] = [
    ("comma_pause.wav", "Alice", "bram", ["Bram, when the bell rings tonight,", "should we shut the gate?"]),
]


def silence(seconds: float) -> Int16Array:
    return np.zeros(int(seconds * WHISPER_RATE), dtype=np.int16)


async def speak(synthesizer: PiperSynthesizer, text: str) -> Int16Array:
    audio = await synthesizer.synthesize(text, VoiceSpec(variation=0.0))
    return resample(pcm16_to_int16(audio.pcm), audio.sample_rate, WHISPER_RATE)


async def main() -> None:
    synthesizer = PiperSynthesizer()
    recordings = []
    for file, player, npc, utterances in QUESTIONS:
        parts = [silence(LEAD_SILENCE_S)]
        for index, text in enumerate(utterances):
            if index:
                parts.append(silence(GAP_SILENCE_S))
            parts.append(await speak(synthesizer, text))
        parts.append(silence(TAIL_SILENCE_S))
        write_wav(ASSETS_DIR / file, np.concatenate(parts), WHISPER_RATE)
        recordings.append(
            Recording(file=file, player=player, npc=npc, text=" ".join(utterances), utterances=utterances)
        )
        print(f"wrote {ASSETS_DIR / file}")
    for file, player, npc, parts_said in PAUSED_QUESTIONS:
        parts = [silence(LEAD_SILENCE_S)]
        for index, text in enumerate(parts_said):
            if index:
                parts.append(silence(COMMA_PAUSE_S))
            parts.append(await speak(synthesizer, text))
        parts.append(silence(TAIL_SILENCE_S))
        write_wav(ASSETS_DIR / file, np.concatenate(parts), WHISPER_RATE)
        text = " ".join(parts_said)
        recordings.append(Recording(file=file, player=player, npc=npc, text=text, utterances=[text]))
        print(f"wrote {ASSETS_DIR / file}")
    manifest = Manifest(
        made_by="scripts/make_demo_assets.py (Piper en_US-joe-medium, variation 0)", recordings=recordings
    )
    MANIFEST_PATH.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    print(f"wrote {MANIFEST_PATH}")


if __name__ == "__main__":
    asyncio.run(main())
