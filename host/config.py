"""Effective configuration: defaults < `npc-host.toml` < `NPC_HOST_*` environment variables.

Nested fields use a double underscore: `NPC_HOST_LLM__BACKEND=ollama`. The config file is `npc-host.toml` in the
working directory, or the path in `NPC_HOST_CONFIG`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from host.errors import ConfigError
from proximity_audio.limits import BridgeLimits

LLMBackendName = Literal["embedded", "ollama", "openai"]
PackagedWeights = Literal["q8_0", "as_shipped"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LLMSettings(_Section):
    backend: LLMBackendName = "embedded"
    model_path: Path | None = Field(None, description="GGUF file for the embedded backend; default: packaged SmolLM2")
    packaged_weights: PackagedWeights = Field(
        "q8_0",
        description="the packaged SmolLM2 ships as Q4_1; q8_0 converts it once (into the user's cache directory) to "
        "weights that read prompts about 1.5x faster and choose the same next token 95.6% of the time, at 44 MB more "
        "memory",
    )
    context_tokens: int = Field(2048, ge=512, le=131072)
    threads: int | None = Field(None, ge=1, le=256)
    chat_format: str | None = Field(
        None, description="llama.cpp chat format for a GGUF without a chat template (chatml, gemma, llama-3, ...)"
    )
    ollama_url: str = "http://127.0.0.1:11434"
    ollama_model: str = "llama3.2:3b"
    openai_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = "default"
    openai_api_key: SecretStr | None = None
    timeout_s: float = Field(60.0, gt=0)
    retries: int = Field(2, ge=0, le=10)
    first_clause_min_chars: int = Field(
        24,
        ge=0,
        le=500,
        description="hand a reply's first clause to TTS once it holds this many characters (cut at , or ;), so the "
        "first audio does not wait for the whole first sentence; 0: whole sentences",
    )


class STTSettings(_Section):
    model_path: Path | None = Field(None, description="faster-whisper model directory; default: packaged tiny.en")
    language: str = Field("en", description="the players' language; 'auto' detects it (needs a multilingual model)")
    beam_size: int = Field(1, ge=1, le=10)
    threads: int = Field(2, ge=1, le=64)
    encoder_window_s: float = Field(
        10.0,
        ge=3.0,
        le=30.0,
        description="shortest audio window Whisper's encoder reads (longer speech gets more); 30 = Whisper's own "
        "padding, which costs about 3x as much on a short question",
    )
    no_speech_threshold: float = Field(0.6, ge=0.0, le=1.0, description="above this (with low log-prob): no speech")
    log_prob_threshold: float = Field(-1.0, le=0.0, description="average token log-probability below this: unsure")


class VADSettings(_Section):
    """Streaming voice activity detection (Silero); durations are rounded up to 32 ms windows."""

    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="speech probability that starts or resumes speech")
    min_speech_ms: int = Field(250, ge=32, le=5000, description="shorter sounds (a cough) are never utterances")
    pause_ms: int = Field(96, ge=32, le=2000, description="silence after which a speculative STT may start")
    end_silence_ms: int = Field(400, ge=64, le=5000, description="silence that ends an utterance")
    pre_roll_ms: int = Field(192, ge=0, le=2000, description="audio kept from before the speech started")
    max_utterance_s: float = Field(15.0, ge=2.0, le=120.0, description="longer speech is cut and continued")

    @model_validator(mode="after")
    def _pause_within_end(self) -> VADSettings:
        if self.pause_ms > self.end_silence_ms:
            raise ValueError("pause_ms must not exceed end_silence_ms")
        return self


class TTSSettings(_Section):
    default_voice: Path | None = Field(None, description="Piper .onnx voice; default: packaged en_US joe")


class BusSettings(_Section):
    """Event hub tuning; the trade-offs are explained in docs/events.md."""

    key_prefix: str = Field("", description="prefix of every Redis key (streams, dedupe marks)")
    max_deliveries: int = Field(5, ge=1, le=1000, description="deliveries before an entry is dead-lettered")
    claim_idle_ms: int = Field(60_000, ge=10, description="pending longer than this = consumer presumed dead")
    retry_delay_ms: int = Field(1_000, ge=0, description="wait before a failed entry is handed to its consumer again")
    maxlen: int = Field(100_000, ge=10, description="Redis streams longer than this drop their fully acked head")
    maxlen_audio: int = Field(
        1_000,
        ge=10,
        description="the same for the streams carrying audio (utterances, NPC voices: about 100 KB an entry)",
    )
    trim_every: int = Field(
        1_000, ge=1, description="publishes to a stream between two trim checks (at most a tenth of its maxlen)"
    )
    memory_queue_size: int = Field(10_000, ge=1, description="in-process stream size at which publish waits")
    memory_audio_bytes: int = Field(
        16 * 2**20,
        ge=0,
        description="audio (utterances, NPC voices) an in-process stream keeps after every group handled it",
    )
    dedupe_ttl_s: int = Field(86_400, ge=1, description="how long a handled event id is remembered")
    dedupe_memory_size: int = Field(100_000, ge=1, description="handled ids remembered by the in-process hub")
    reconnect_timeout_s: float = Field(30.0, gt=0, description="how long publish retries while Redis is away")
    connect_timeout_s: float = Field(5.0, gt=0)
    socket_timeout_s: float = Field(10.0, gt=0, description="must exceed the consumers' block_ms")


class MinecraftSettings(_Section):
    """Minecraft adapter tuning (docs/minecraft.md)."""

    positions_interval_s: float = Field(0.5, gt=0, le=60, description="how often player positions are polled")
    position_stale_s: float = Field(
        1.0, gt=0, le=60, description="a speaker's position older than this is read again before routing the line"
    )
    log_poll_interval_s: float = Field(0.2, gt=0, le=10, description="how often the server log is checked for chat")
    rcon_timeout_s: float = Field(5.0, gt=0, le=120, description="limit for every RCON connect, read and write")
    rcon_backoff_max_s: float = Field(30.0, gt=0, le=600, description="longest wait between reconnect attempts")
    snbt_text: bool = Field(False, description="true for servers on 1.21.5+: CustomName as an SNBT text component")
    npc_chat_prefix: str = Field("[NPC] ", max_length=32, description="put before an NPC's name in its chat lines")
    npc_chat_color: str = Field(
        "gold", pattern=r"^(#[0-9A-Fa-f]{6}|[a-z_]{3,12})$", description="colour of NPC chat lines (name or #RRGGBB)"
    )
    npc_chat_hover: str = Field(
        "{name} is a character played by npc-host, not a player",
        max_length=200,
        description="shown when a player points at an NPC's line; {name} is the NPC's name",
    )


class VoicePageSettings(_Section):
    """Players' voice in the browser (docs/voice-page.md); each server opts in with `[voice_page]` in its profile."""

    invite_secret: SecretStr | None = Field(
        None, description="signs one-time invites; set it when the gateway and admin roles run in separate processes"
    )
    ws_url: str | None = Field(
        None,
        pattern=r"^wss?://\S+$",
        description="the voice WebSocket as browsers reach it (behind TLS: wss://host/voice); "
        "default: ws(s)://<the page's host>:<bridge_port>/voice",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NPC_HOST_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    profiles_dir: Path = Path("npc_profiles")
    data_dir: Path = Path("data")
    transcripts_dir: Path = Path("transcripts")
    database_url: SecretStr | None = Field(None, description="SQLAlchemy async URL; default: SQLite file in data_dir")
    redis_url: SecretStr | None = Field(None, description="Redis URL; unset = in-process event hub")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "rich", "plain", "json"] = Field(
        "auto", description="auto: rich on a terminal, else plain (one line per record); json: one object per line"
    )
    admin_host: str = Field("127.0.0.1", description="address of the admin web server (0.0.0.0 in containers)")
    admin_port: int = Field(8750, ge=0, le=65535, description="admin page, /healthz and /metrics; 0 = any free port")
    admin_session_hours: float = Field(12.0, gt=0, le=24 * 30, description="a sign-in lasts this long")
    admin_secure_cookie: bool = Field(False, description="mark the session cookie Secure (behind HTTPS)")
    bridge_host: str = Field("127.0.0.1", description="address the voice-mod bridge listens on")
    bridge_port: int = Field(8765, ge=1, le=65535)
    memory_ceiling_mb: int | None = Field(
        None,
        ge=0,
        description="resident memory above which new bridge connections, players and voice pages are refused until "
        "the process is back under it; unset: 80% of the cgroup memory limit or of the RAM; 0: never",
    )
    bridge: BridgeLimits = BridgeLimits()
    llm: LLMSettings = LLMSettings()
    stt: STTSettings = STTSettings()
    vad: VADSettings = VADSettings()
    tts: TTSSettings = TTSSettings()
    bus: BusSettings = BusSettings()
    minecraft: MinecraftSettings = MinecraftSettings()
    voice_page: VoicePageSettings = VoicePageSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file()))

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'npc-host.db'}"

    def masked(self) -> dict[str, Any]:
        """The configuration as plain data with every secret masked, for `npc-host config show`."""
        data: dict[str, Any] = self.model_dump(mode="json")
        data["database_url"] = mask_url(self.effective_database_url)
        data["redis_url"] = mask_url(self.redis_url.get_secret_value()) if self.redis_url else None
        data["llm"]["ollama_url"] = mask_url(self.llm.ollama_url)
        data["llm"]["openai_url"] = mask_url(self.llm.openai_url)
        if self.llm.openai_api_key is not None:
            data["llm"]["openai_api_key"] = MASK
        if self.voice_page.invite_secret is not None:
            data["voice_page"]["invite_secret"] = MASK
        return data


MASK = "********"


def url_password(url: str) -> str | None:
    """The password part of a URL such as `postgresql://user:pw@host/db`, if it has one."""
    try:
        return urlsplit(url).password
    except ValueError:  # not a URL at all (a file path, a typo): nothing to hide
        return None


def mask_url(url: str) -> str:
    """Hide the password of a URL such as `postgresql://user:pw@host/db`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        # Unparsable, so where a password would start is unknown: show nothing rather than risk showing it.
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc}"))


def config_file() -> Path:
    """`npc-host.toml` in the working directory, or the file named by `NPC_HOST_CONFIG`."""
    return Path(os.environ.get("NPC_HOST_CONFIG", "npc-host.toml"))


ENV_PREFIX = "NPC_HOST_"
# Variables npc-host reads that are not settings (add yours here); profiles name their own secret variables too.
# The test suite's and the benchmarks' own switches are here too: CI exports them to every process it starts.
OTHER_VARIABLES = frozenset(
    {
        "NPC_HOST_CONFIG",
        "NPC_HOST_ROLES",
        "NPC_HOST_BRIDGE_TOKEN",
        "NPC_HOST_REQUIRE_SERVICES",
        "NPC_HOST_SOAK_S",
        "NPC_HOST_SOAK_PLAYERS",
        "NPC_HOST_ROLEPLAY_SEEDS",
        "NPC_HOST_ROLEPLAY_CATEGORIES",
    }
)


def setting_variables() -> set[str]:
    """Every `NPC_HOST_*` name a setting is read from: top-level fields and each section's fields."""
    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        names.add(f"{ENV_PREFIX}{name.upper()}")
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            names.update(f"{ENV_PREFIX}{name.upper()}__{sub.upper()}" for sub in section.model_fields)
    return names


def unknown_variables(environ: Mapping[str, str], allowed: Iterable[str] = ()) -> list[str]:
    """One line per `NPC_HOST_*` variable in `environ` that nothing reads (a typo would otherwise be ignored)."""
    from host.suggest import did_you_mean

    known = setting_variables() | OTHER_VARIABLES | {name.upper() for name in allowed}
    return [
        f"{name}: no such setting{did_you_mean(name.upper(), known)}"
        for name in sorted(environ)
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in known
    ]


def load_settings(**overrides: Any) -> Settings:
    """The effective settings; a config file that is not TOML is a `ConfigError` naming it and the line. An absent
    file means no file settings (pointing NPC_HOST_CONFIG at one shields a process from the working directory's)."""
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_file()}: not valid TOML: {exc}") from None
