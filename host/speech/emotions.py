"""Emotion tags -> voice parameters.

The brain tags sentences with an emotion (`[happy]`, `*whispers*`, lowercased). Each tag maps to multipliers of the
NPC's base voice (`EmotionVoice`: speed, variation, volume); an NPC's `voice.emotions` table overrides the default
entry of the same name. The default table is documented in docs/speech.md - keep the two in step.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from host.errors import NpcHostError
from host.profiles.schema import EmotionVoice, VoiceSpec
from host.speech.voice_shape import pitch_factor
from host.suggest import did_you_mean

NEUTRAL = "neutral"

DEFAULT_EMOTIONS: dict[str, EmotionVoice] = {
    NEUTRAL: EmotionVoice(),
    "happy": EmotionVoice(speed=1.10, variation=1.25, volume=1.05),
    "excited": EmotionVoice(speed=1.20, variation=1.35, volume=1.15),
    "surprised": EmotionVoice(speed=1.10, variation=1.40, volume=1.15),
    "angry": EmotionVoice(speed=1.15, variation=1.20, volume=1.30),
    "sad": EmotionVoice(speed=0.85, variation=0.75, volume=0.75),
    "tired": EmotionVoice(speed=0.80, variation=0.70, volume=0.80),
    "calm": EmotionVoice(speed=0.92, variation=0.85, volume=0.90),
    "fearful": EmotionVoice(speed=1.15, variation=1.40, volume=0.85),
    "whisper": EmotionVoice(speed=0.90, variation=0.60, volume=0.45),
}

# Stage directions and synonyms a model writes instead of the table's names.
EMOTION_ALIASES: dict[str, str] = {
    "joyful": "happy",
    "cheerful": "happy",
    "laughs": "happy",
    "laughing": "happy",
    "smiles": "happy",
    "amused": "happy",
    "eager": "excited",
    "shocked": "surprised",
    "gasps": "surprised",
    "furious": "angry",
    "annoyed": "angry",
    "shouts": "angry",
    "growls": "angry",
    "sighs": "sad",
    "sorrowful": "sad",
    "cries": "sad",
    "yawns": "tired",
    "sleepy": "tired",
    "softly": "calm",
    "gently": "calm",
    "afraid": "fearful",
    "scared": "fearful",
    "nervous": "fearful",
    "trembles": "fearful",
    "whispers": "whisper",
    "whispering": "whisper",
    "quietly": "whisper",
}

# Piper's medium voices are trained around these; VoiceSpec.variation is expressed on the noise_scale axis.
DEFAULT_NOISE_SCALE = 0.667
DEFAULT_NOISE_W = 0.8
# Piper normalises each sentence to full scale; leave headroom so louder emotions are not clipped.
BASE_VOLUME = 0.7
MAX_NOISE = 2.0


class VoiceParams(BaseModel):
    """What one sentence is synthesised with: Piper's scales plus the output volume."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    emotion: str = Field(description="the table entry used after alias resolution; 'neutral' when unknown")
    speaker: int = Field(ge=0)
    length_scale: float = Field(gt=0)
    noise_scale: float = Field(ge=0)
    noise_w_scale: float = Field(ge=0)
    volume: float = Field(gt=0)
    pitch: float = Field(0.0, description="semitones, applied after synthesis (host/speech/voice_shape.py)")
    timbre: float = Field(0.0, ge=-1.0, le=1.0)


def canonical_emotion(tag: str | None, overrides: dict[str, EmotionVoice] | None = None) -> str:
    """The table entry a tag selects: its exact name (in the NPC's table or the default one), an alias, or its first
    word's; anything else is neutral."""
    name = " ".join((tag or "").lower().split())
    if not name:
        return NEUTRAL
    known = {**DEFAULT_EMOTIONS, **(overrides or {})}
    first_word = name.split()[0]  # "whispers softly" -> "whispers"
    for candidate in (name, EMOTION_ALIASES.get(name), first_word, EMOTION_ALIASES.get(first_word)):
        if candidate and candidate in known:
            return candidate
    return NEUTRAL


class UnknownEmotionError(NpcHostError):
    code = "unknown_emotion"


def known_emotion(tag: str | None, voice: VoiceSpec) -> str | None:
    """A tag a person typed (`npc-host say --emotion`), checked: the model's own tags fall back to neutral
    quietly, but a typo from a person is refused with the closest name and the list."""
    name = " ".join((tag or "").lower().split())
    if not name:
        return None
    if canonical_emotion(name, voice.emotions) != NEUTRAL or name.split()[0] == NEUTRAL:
        return name
    table = sorted({*DEFAULT_EMOTIONS, *voice.emotions})
    raise UnknownEmotionError(
        f"unknown emotion '{tag}'{did_you_mean(name, [*table, *EMOTION_ALIASES])}; known: {', '.join(table)}"
        " (and their synonyms, docs/speech.md)"
    )


def emotion_multipliers(voice: VoiceSpec, tag: str | None) -> tuple[str, EmotionVoice]:
    name = canonical_emotion(tag, voice.emotions)
    return name, voice.emotions.get(name) or DEFAULT_EMOTIONS[name]


def voice_params(voice: VoiceSpec, tag: str | None, *, model_noise_w: float = DEFAULT_NOISE_W) -> VoiceParams:
    """Combine an NPC's base voice with an emotion tag.

    speed multiplies into Piper's length_scale (= 1 / speed); variation scales both noise_scale and noise_w relative
    to Piper's defaults; volume multiplies the normalised output level.
    """
    name, emotion = emotion_multipliers(voice, tag)
    relative_variation = voice.variation / DEFAULT_NOISE_SCALE * emotion.variation
    return VoiceParams(
        emotion=name,
        speaker=voice.speaker,
        # A raised or lowered pitch shortens or lengthens the audio by its factor: Piper speaks that much slower first.
        length_scale=pitch_factor(voice.pitch) / (voice.speed * emotion.speed),
        noise_scale=min(voice.variation * emotion.variation, MAX_NOISE),
        noise_w_scale=min(model_noise_w * relative_variation, MAX_NOISE),
        volume=BASE_VOLUME * emotion.volume,
        pitch=voice.pitch,
        timbre=voice.timbre,
    )
