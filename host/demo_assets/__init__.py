"""Recorded player questions for the demo scene and the speech tests, listed in `manifest.json`.

Made once by `scripts/make_demo_assets.py` (Piper, packaged voice) and committed: 16 kHz mono 16-bit WAV.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

ASSETS_DIR = Path(__file__).resolve().parent
MANIFEST_PATH = ASSETS_DIR / "manifest.json"


class Recording(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str = Field(pattern=r"^[a-z0-9_]+\.wav$")
    player: str
    npc: str | None = Field(None, description="the NPC the question is for, when there is one")
    text: str = Field(description="exactly what is said, all utterances joined by a space")
    utterances: list[str] = Field(min_length=1, description="the separate questions, in order")

    @property
    def path(self) -> Path:
        return ASSETS_DIR / self.file


class Manifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sample_rate: int = 16000
    made_by: str
    recordings: list[Recording]

    def get(self, file: str) -> Recording:
        for recording in self.recordings:
            if recording.file == file:
                return recording
        raise KeyError(f"{file} is not in {MANIFEST_PATH}")


def load_manifest() -> Manifest:
    return Manifest.model_validate_json(MANIFEST_PATH.read_text(encoding="utf-8"))
