"""The profile file format, validated once at the edge. Unknown fields are errors (typos must not pass silently)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

NpcId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
ServerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# Minecraft player names: 3-16 characters of letters, digits and underscore.
PlayerName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{3,16}$")]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]*$")]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Vec3(StrictModel):
    x: float
    y: float
    z: float


class PersonaSpec(StrictModel):
    description: str = Field(min_length=1)
    personality: str = ""
    scenario: str = ""
    speaking_style: str = ""
    goals: list[str] = []
    secrets: list[str] = Field(default=[], description="facts the character must never reveal")
    first_message: str = ""
    example_dialogue: list[str] = Field(default=[], description="lines like '{{user}}: ...' / '{{char}}: ...'")
    system_prompt: str = ""
    post_history_instructions: str = ""


class EmotionVoice(StrictModel):
    """Multipliers applied to the NPC's base voice while a sentence carries this emotion tag."""

    speed: float = Field(1.0, gt=0.25, le=4.0)
    variation: float = Field(1.0, ge=0.0, le=4.0)
    volume: float = Field(1.0, gt=0.0, le=4.0)


class VoiceSpec(StrictModel):
    model: str = Field("packaged", description="'packaged' or a path to a Piper .onnx voice")
    speaker: int = Field(0, ge=0)
    speed: float = Field(1.0, ge=0.25, le=4.0)
    variation: float = Field(0.667, ge=0.0, le=2.0)
    pitch: float = Field(0.0, ge=-12.0, le=12.0, description="semitones up (+) or down (-) from the voice's own")
    timbre: float = Field(0.0, ge=-1.0, le=1.0, description="-1 darker and warmer ... +1 brighter and thinner")
    emotions: dict[str, EmotionVoice] = {}


BodyKind = Literal["villager", "armor_stand", "none"]


class WorldSpec(StrictModel):
    position: Vec3
    yaw: float = Field(0.0, ge=-360.0, le=360.0)
    dimension: str = "minecraft:overworld"
    hearing_range: float = Field(8.0, gt=0.0, le=256.0)
    speaking_range: float = Field(16.0, gt=0.0, le=256.0)
    body: BodyKind = "villager"


class LlmSpec(StrictModel):
    backend: Literal["embedded", "ollama", "openai"] | None = Field(None, description="default: the host's")
    model: str | None = Field(None, description="model name or file; default: the backend's")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_reply_sentences: int = Field(3, ge=1, le=12)
    max_reply_tokens: int = Field(120, ge=8, le=2048)


class SelectiveLogic(StrEnum):
    AND_ANY = "AND_ANY"
    NOT_ANY = "NOT_ANY"
    AND_ALL = "AND_ALL"
    NOT_ALL = "NOT_ALL"


class LoreEntry(StrictModel):
    name: str = ""
    keys: list[str] = []
    secondary_keys: list[str] = []
    selective_logic: SelectiveLogic = SelectiveLogic.AND_ANY
    content: str = Field(min_length=1)
    priority: int = Field(100, description="higher wins when the lore budget is short")
    constant: bool = False
    enabled: bool = True

    @model_validator(mode="after")
    def _needs_trigger(self) -> LoreEntry:
        if not self.constant and not self.keys:
            raise ValueError("a lore entry needs keys unless it is constant")
        return self


class SafetySpec(StrictModel):
    refuse_topics: list[str] = []
    stay_in_character: list[str] = []
    refusal_line: str = "I'd rather not speak of that."


class NpcProfile(StrictModel):
    id: NpcId
    name: str = Field(min_length=1, max_length=64)
    aliases: list[str] = Field(default=[], description="other names players call the NPC by")
    persona: PersonaSpec
    voice: VoiceSpec = VoiceSpec()
    world: WorldSpec
    llm: LlmSpec = LlmSpec()
    lore: list[LoreEntry] = []
    safety: SafetySpec = SafetySpec()


class RconSpec(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(25575, ge=1, le=65535)
    password_env: EnvVarName = Field(description="name of the environment variable holding the RCON password")


class BridgeSpec(StrictModel):
    token_env: EnvVarName = Field(description="name of the environment variable holding the voice bridge's token")


class NpcDefaults(StrictModel):
    """Values every NPC of the server inherits unless its own file sets them."""

    llm: dict[str, object] = {}
    voice: dict[str, object] = {}
    world: dict[str, object] = {}


class ServerProfile(StrictModel):
    name: ServerName
    game: Literal["minecraft"] = "minecraft"
    rcon: RconSpec | None = None
    bridge: BridgeSpec | None = Field(None, description="the voice-mod bridge; without it the server has no voice")
    log_path: str | None = Field(None, description="the server's logs/latest.log, for chat capture")
    operators: list[PlayerName] = []
    lore: list[LoreEntry] = []
    defaults: NpcDefaults = NpcDefaults()
