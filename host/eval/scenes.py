"""The scene file of `npc-host eval`: TOML, validated at the edge, problems reported by file, line and field.

server = "example"                  # the profiles' server folder the NPCs live in

[defaults]                          # every scene starts from these
player = "Alice"
forbidden = ["as an AI", "assistant"]
max_sentences = 2

[[scene]]
name = "bram: price of a room"
npc = "bram"
category = "fact"
line = "How much is a room for the night?"
history = [{ player = "Hi there!", npc = "Welcome, friend!" }]
must_mention_any = ["three", "3"]
must_not_mention = ["floorboard"]
language = "ru"
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field, ValidationError, field_validator

from host.brain.language import LANGUAGE_NAMES
from host.errors import NpcHostError
from host.profiles.key_lines import key_lines, line_of
from host.profiles.problems import describe, field_name
from host.profiles.schema import NpcId, PlayerName, ServerName, StrictModel

MAX_SCENES = 1000


class SceneFileError(NpcHostError):
    code = "scene_file"


class HistoryTurn(StrictModel):
    player: str = Field(min_length=1, max_length=2000, description="what the player said earlier")
    npc: str = Field(min_length=1, max_length=2000, description="what the NPC answered")


class SceneDefaults(StrictModel):
    player: PlayerName = "Alice"
    category: str = Field("general", min_length=1, max_length=40)
    forbidden: list[str] = Field([], description="words or phrases no reply may contain, for every scene")
    max_sentences: int | None = Field(None, ge=1, le=12)


class Scene(StrictModel):
    name: str = Field(min_length=1, max_length=120)
    npc: NpcId
    line: str = Field(min_length=1, max_length=2000, description="what the player says")
    category: str | None = Field(None, min_length=1, max_length=40)
    player: PlayerName | None = None
    history: list[HistoryTurn] = Field([], max_length=20)
    must_mention_any: list[str] = Field([], description="the reply passes only if it holds at least one of these")
    must_not_mention: list[str] = Field([], description="the reply fails if it holds any of these")
    forbidden: list[str] = Field([], description="added to the defaults' forbidden words")
    max_sentences: int | None = Field(None, ge=1, le=12)
    language: str | None = Field(None, description="the reply must be in this language (a code such as 'ru')")

    @field_validator("language")
    @classmethod
    def _known_language(cls, language: str | None) -> str | None:
        if language is not None and language not in LANGUAGE_NAMES:
            raise ValueError(f"not a language the checker knows; use one of {', '.join(sorted(LANGUAGE_NAMES))}")
        return language


class SceneFile(StrictModel):
    server: ServerName
    defaults: SceneDefaults = SceneDefaults()
    scene: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)


def load_scenes(path: Path) -> SceneFile:
    """The validated scene file; raises SceneFileError naming the file, line and field of the first problems."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneFileError(f"{path}: cannot read the scene file: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SceneFileError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return SceneFile.model_validate(data)
    except ValidationError as exc:
        lines = key_lines(text)
        problems = [
            f"{path}:{line_of(lines, tuple(error['loc']))}: {field_name(tuple(error['loc']))}: "
            f"{describe(error, SceneFile)}"
            for error in exc.errors()[:10]
        ]
        raise SceneFileError("\n".join(problems)) from None
