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
    post_history_instructions: str = Field("", description="more rules for the persona block (no longer after it)")
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")] | None = Field(
        None, description="the language the NPC always speaks (a code such as 'de'); default: the player's"
    )


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
    chat_format: str | None = Field(None, description="embedded: chat format of a GGUF without a chat template")
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    max_reply_sentences: int = Field(3, ge=1, le=12)
    max_reply_tokens: int = Field(120, ge=8, le=2048)
    seed: int | None = Field(None, ge=0, le=2**31 - 1, description="fixed sampling seed; default: fresh every turn")


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


ActionName = Literal["follow", "stop", "walk", "look", "give"]
PlainName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_'-]{1,32}$")]


class StockItem(StrictModel):
    """An item the NPC can give, with its limits. Every give takes from `stock` (None = never runs out)."""

    item: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]+:[a-z0-9_./-]+$")] = Field(
        description="the game's item id, e.g. minecraft:bread"
    )
    stock: int | None = Field(None, ge=0, description="how many the NPC has; None = unlimited")
    per_player_per_day: int = Field(1, ge=0, le=64, description="items one player may get per UTC day")
    per_day: int | None = Field(None, ge=0, description="items everyone together may get per UTC day")
    max_per_give: int = Field(1, ge=1, le=64)


class ActionsSpec(StrictModel):
    """What the NPC may do besides talking (host/npc_actions.py). Nothing by default."""

    allowed: list[ActionName] = []
    waypoints: dict[PlainName, Vec3] = Field({}, description="named places for [walk <place>], in its dimension")
    stock: dict[PlainName, StockItem] = Field({}, description="what [give <name>] can hand out, by name")
    speed: float = Field(4.0, gt=0.0, le=10.0, description="walking speed in blocks per second")
    follow_distance: float = Field(2.5, ge=1.0, le=16.0, description="how close it keeps to a player it follows")
    max_follow_s: float = Field(300.0, gt=0.0, le=3600.0, description="a follow ends by itself after this long")
    max_walk_blocks: float = Field(
        64.0, gt=0.0, le=512.0, description="farthest it walks (to a waypoint or after a player)"
    )
    give_range: float = Field(6.0, gt=0.0, le=32.0, description="a player farther away is not handed anything")


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
    actions: ActionsSpec = ActionsSpec()


class RconSpec(StrictModel):
    host: str = "127.0.0.1"
    port: int = Field(25575, ge=1, le=65535)
    password_env: EnvVarName = Field(description="name of the environment variable holding the RCON password")


class BridgeSpec(StrictModel):
    token_env: EnvVarName = Field(description="name of the environment variable holding the voice bridge's token")


class VoicePageSpec(StrictModel):
    """Players' voice in the browser: `!voice` in game chat answers with a one-time link to the voice page."""

    public_url: str = Field(
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the voice page as players reach it, e.g. https://npc.example.org/voice/ (behind TLS)",
    )
    enabled: bool = Field(True, description="false: `!voice` answers that voice in the browser is off")
    offer_on_join: bool = Field(False, description="send the link to every player who joins the game")
    invite_minutes: float = Field(5.0, gt=0.0, le=60.0, description="how long a link stays valid (once)")


class NpcDefaults(StrictModel):
    """Values every NPC of the server inherits unless its own file sets them."""

    llm: dict[str, object] = {}
    voice: dict[str, object] = {}
    world: dict[str, object] = {}


class AdvisorModelSpec(StrictModel):
    """A model the advisor calls. Without `url` the host's URL for that backend is used ([llm] settings)."""

    backend: Literal["embedded", "ollama", "openai"]
    model: str | None = Field(None, description="model name (or GGUF file for embedded); default: the host's")
    url: str | None = Field(None, description="Ollama URL or OpenAI-compatible base URL ending in /v1")
    api_key_env: EnvVarName | None = Field(None, description="environment variable holding the API key (openai)")
    structured_output: Literal["json_schema", "json_object", "off"] = Field(
        "json_schema",
        description="openai only: json_schema (OpenAI, vLLM, llama.cpp's server), json_object (llama-cpp-python's "
        "server: json_object with a schema), off (prompt only)",
    )
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(800, ge=16, le=8192)
    timeout_s: float = Field(120.0, gt=0, le=3600)


class AdvisorSpec(StrictModel):
    """The advisor's schedule and models for one server (docs/advisor.md)."""

    enabled: bool = True
    every_minutes: float = Field(10.0, ge=0.5, le=24 * 60, description="a pass at least this often")
    after_lines: int = Field(40, ge=1, le=100_000, description="or sooner, once this many new lines were written")
    approval: bool = Field(False, description="an operator accepts or rejects each recommendation first")
    model: AdvisorModelSpec = Field(description="the advisor model: a bigger one, on Ollama or an OpenAI-compatible")
    condense: AdvisorModelSpec = Field(
        AdvisorModelSpec(backend="embedded", temperature=0.2, max_tokens=120),
        description="the light model that condenses transcripts; default: the packaged one, in its own instance",
    )
    chunk_chars: int = Field(3000, ge=200, le=100_000, description="transcript text condensed per model call")
    digest_chars: int = Field(1200, ge=100, le=20_000, description="longest digest per NPC given to the advisor")
    max_bytes_per_pass: int = Field(262_144, ge=4096, description="transcript read per pass; the rest waits")
    advice_tokens: int = Field(120, ge=16, le=2048, description="token budget of the advice layer in NPC prompts")


class TurnTakingSpec(StrictModel):
    """How long the host waits before it answers a spoken line (host/speech/turn_taking.py)."""

    unfinished_hold_ms: int = Field(
        600, ge=0, le=5000, description="extra wait after a line that sounds unfinished (0: answer every line at once)"
    )
    question_end_ms: int = Field(
        256,
        ge=32,
        le=5000,
        description="silence that ends a line heard as a finished question or exclamation, when it is shorter "
        "than the VAD's end_silence_ms",
    )
    sentence_end_ms: int = Field(
        352,
        ge=32,
        le=5000,
        description="the same after a line heard as a finished sentence (it ends on '.' and does not sound unfinished)",
    )


class ServerProfile(StrictModel):
    name: ServerName
    game: Literal["minecraft", "table"] = Field(
        "minecraft", description="'table': no game server; the game master places the tokens on the admin page's map"
    )
    rcon: RconSpec | None = None
    bridge: BridgeSpec | None = Field(None, description="the voice-mod bridge; without it the server has no voice")
    voice_page: VoicePageSpec | None = Field(None, description="players' voice in the browser (one-time links)")
    log_path: str | None = Field(None, description="the server's logs/latest.log, for chat capture")
    operators: list[PlayerName] = []
    lore: list[LoreEntry] = []
    defaults: NpcDefaults = NpcDefaults()
    advisor: AdvisorSpec | None = Field(None, description="scheduled advisor passes; None: no advisor")
    turn_taking: TurnTakingSpec = Field(TurnTakingSpec(), description="how long the host waits before it answers")

    @model_validator(mode="after")
    def _table_has_no_game(self) -> ServerProfile:
        if self.game == "table" and (self.rcon is not None or self.log_path is not None):
            raise ValueError("a 'table' server has no game server: remove [rcon] and log_path")
        return self
