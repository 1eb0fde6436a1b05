"""When each stage of a voice turn finished, in wall time, and the latencies a player notices.

The origin of every latency is the end of the player's speech (their last sample; so the endpoint wait is
included), or for a typed line the moment it was sent. Stages in order (`host/voice/scene.py` says where each
milestone is read):

    speech end -> endpoint (the bridge's VAD decided the utterance is over) -> transcript -> first token
               -> first sentence -> first chunk (TTS made its first audio) -> first audio (it reached the player)
"""

from __future__ import annotations

from dataclasses import dataclass

STAGES = ("endpoint_wait", "stt", "first_token", "first_sentence", "tts", "delivery")


def _ms(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000.0, 1)


@dataclass
class VoiceTimings:
    """Wall-clock milestones (`time.time()`) of one turn; None for a stage the turn never reached."""

    origin: float
    spoken: bool  # the origin is the end of speech (False: a typed line)
    endpoint: float | None = None
    transcript: float | None = None
    stt_decode_ms: float | None = None  # Whisper's own time, partly hidden in the endpoint wait by speculation
    first_token: float | None = None
    first_sentence: float | None = None
    first_chunk: float | None = None
    first_audio: float | None = None

    def since_origin(self) -> dict[str, float | None]:
        """Each milestone in ms after the end of speech (the demo report's `ms`)."""
        return {
            "stt": _ms(self.origin, self.transcript) if self.spoken else None,
            "first_token": _ms(self.origin, self.first_token),
            "first_sentence": _ms(self.origin, self.first_sentence),
            "first_audio": _ms(self.origin, self.first_audio),
            "end_of_speech_to_first_audio": _ms(self.origin, self.first_audio) if self.spoken else None,
        }

    def stages(self) -> dict[str, float | None]:
        """How long each stage added, back to back: together they make up end of speech -> first audio. A
        speculative turn writes before its line is final, so its `first_token` stage can be negative (hidden in the
        endpoint wait) and its `first_sentence` stage then counts from that first token to the sentence going out."""
        marks = (
            self.origin,
            self.endpoint,
            self.transcript,
            self.first_token,
            self.first_sentence,
            self.first_chunk,
            self.first_audio,
        )
        return {stage: _ms(start, end) for stage, start, end in zip(STAGES, marks[:-1], marks[1:], strict=True)}

    @property
    def to_first_audio_ms(self) -> float | None:
        return _ms(self.origin, self.first_audio)
