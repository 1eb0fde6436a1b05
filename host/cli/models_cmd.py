"""`npc-host models`: which runtimes and packaged models are installed, and the exact command for each missing one.

Found with `importlib.util.find_spec` and package metadata only: nothing is imported or loaded, so it answers at
CLI speed even where llama.cpp is installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import sys
from typing import NamedTuple

import typer

from host.cli import app
from host.cli.common import settings_or_exit
from host.extras import EXTRA_MODULES
from host.packaged_models import PACKAGED_MODELS, package_dir


class Part(NamedTuple):
    what: str
    state: str  # "installed" or "missing"
    detail: str  # version and place, or the command that installs it


_RUNTIMES = (("llama_cpp", "llama-cpp-python"), ("faster_whisper", "faster-whisper"), ("piper", "piper-tts"))


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def installed_parts() -> list[Part]:
    parts: list[Part] = []
    for module, distribution in _RUNTIMES:
        extra, purpose = EXTRA_MODULES[module]
        if importlib.util.find_spec(module) is None:
            parts.append(Part(purpose, "missing", f"{sys.executable} -m pip install 'npc-host[{extra}]'"))
        else:
            parts.append(Part(purpose, "installed", f"{distribution} {_version(distribution)}"))
    for model in PACKAGED_MODELS:
        folder = package_dir(model)
        if folder is None:
            parts.append(Part(model.role, "missing", model.install_command()))
        else:
            parts.append(Part(model.role, "installed", f"{model.requirement} in {folder}"))
    return parts


@app.command("models")
def models(
    check: bool = typer.Option(False, "--check", help="exit 1 when a part is missing (for scripts)"),
) -> None:
    """List the model runtimes and packaged models, installed or not, with the command that installs each missing one.

    Settings that point at other models instead: NPC_HOST_LLM__MODEL_PATH (a GGUF file),
    NPC_HOST_STT__MODEL_PATH (a faster-whisper folder), NPC_HOST_TTS__DEFAULT_VOICE (a Piper .onnx voice).
    """
    settings = settings_or_exit()
    parts = installed_parts()
    width = max(len(part.what) for part in parts)
    for part in parts:
        mark = "ok     " if part.state == "installed" else "MISSING"
        typer.echo(f"{mark} {part.what.ljust(width)}  {part.detail}")
    overrides = {
        "NPC_HOST_LLM__MODEL_PATH": settings.llm.model_path,
        "NPC_HOST_STT__MODEL_PATH": settings.stt.model_path,
        "NPC_HOST_TTS__DEFAULT_VOICE": settings.tts.default_voice,
    }
    for setting, path in overrides.items():
        if path is not None:
            found = "found" if path.exists() else "NOT FOUND"
            typer.echo(f"{setting} = {path} ({found}; used instead of the packaged model)")
    missing = [part for part in parts if part.state == "missing"]
    if missing:
        typer.echo(f"\n{len(missing)} part(s) missing; run the command shown beside each.")
        if settings.llm.backend != "embedded":
            typer.echo(f"(llm.backend is {settings.llm.backend}: the embedded LLM and SmolLM2 are not needed)")
    if check and missing:
        raise typer.Exit(1)
