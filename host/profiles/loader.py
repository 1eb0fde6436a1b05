"""Loading `npc_profiles/`: one folder per server with a `server.toml` and one `<npc>.toml` per character.

Every problem is collected, not raised, so one bad file never hides the others: a bad NPC file loses only that NPC,
a bad `server.toml` loses that server. Relative paths in the files (voice and model files, the log path) are resolved
against the server folder, so the loaded profiles hold paths that work from anywhere.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from host.brain.lore import LoreKeyError, compile_key
from host.profiles import env_values
from host.profiles.key_lines import Loc, key_lines, line_of
from host.profiles.problems import Problem, ProfileError, describe, field_name
from host.profiles.schema import LoreEntry, NpcDefaults, NpcProfile, ServerProfile

SERVER_FILE = "server.toml"
PACKAGED = "packaged"
_SYNTAX_POSITION = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$", re.DOTALL)


@dataclass
class ServerLoad:
    """What one server folder yielded: the good profiles and every problem found on the way."""

    directory: Path
    root: Path  # the profiles folder: no profile file may lie outside it
    server: ServerProfile | None = None
    npcs: dict[str, NpcProfile] = field(default_factory=dict)
    npc_files: dict[str, Path] = field(default_factory=dict)
    rejected_files: set[Path] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.server.name if self.server is not None else self.directory.name


def load_all(path: Path) -> list[ServerLoad]:
    """Load one server folder (it holds a `server.toml`) or every server folder under a profiles root."""
    if (path / SERVER_FILE).is_file():
        return [load_server(path)]
    if not path.is_dir():
        raise ProfileError(
            f"profiles folder not found: {path} (set NPC_HOST_PROFILES_DIR or profiles_dir in npc-host.toml)",
            code="profiles_missing",
        )
    loads = [load_server(sub, root=path) for sub in sorted(path.iterdir()) if _is_server_folder(sub)]
    first_by_name: dict[str, ServerLoad] = {}
    for load in loads:
        if load.server is None:
            continue
        first = first_by_name.setdefault(load.server.name, load)
        if first is not load:
            server_path = load.directory / SERVER_FILE
            message = f"duplicate server name '{load.server.name}'; already used by {first.directory / SERVER_FILE}"
            load.problems.append(Problem(server_path, _line_in(server_path, ("name",)), "name", message))
            load.server, load.npcs, load.npc_files = None, {}, {}
    return loads


def load_server(directory: Path, *, root: Path | None = None) -> ServerLoad:
    """Load one server folder: its server.toml, then every NPC file, each on its own. A file that is (or lies in) a
    symlink leading outside `root` (the profiles folder; default the server folder) is refused."""
    load = ServerLoad(directory, root=root or directory)
    if not (directory / SERVER_FILE).is_file():
        load.problems.append(Problem(directory / SERVER_FILE, 1, "(file)", "missing: a server folder needs one"))
        return load
    server_file = _read_toml(directory / SERVER_FILE, load.root)
    if isinstance(server_file, Problem):
        load.problems.append(server_file)
        return load
    unset = env_values.expand(server_file.data)
    if unset:
        load.problems.extend(server_file.problem(loc, message) for loc, message in unset)
        return load
    try:
        server = ServerProfile.model_validate(server_file.data)
    except ValidationError as exc:
        load.problems.extend(_validation_problems(exc, ServerProfile, lambda loc: (server_file, loc)))
        return load
    lore_problems = _lore_key_problems(server.lore, server_file)
    if lore_problems:
        load.problems.extend(lore_problems)
        return load
    load.server = _resolve_server_paths(server, directory)
    for path in npc_files(directory):
        _load_npc(path, server, server_file, load)
    return load


def npc_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.toml") if p.name != SERVER_FILE and not p.name.startswith("."))


@dataclass(frozen=True)
class _TomlFile:
    path: Path
    data: dict[str, Any]
    lines: dict[Loc, int]

    def problem(self, loc: Loc, message: str) -> Problem:
        return Problem(self.path, line_of(self.lines, loc), field_name(loc), message)


# Which file, and where in it, a location of the validated data comes from.
_Origin = Callable[[Loc], tuple[_TomlFile, Loc]]


def _is_server_folder(path: Path) -> bool:
    return path.is_dir() and not path.name.startswith(".") and any(path.glob("*.toml"))


def _read_toml(path: Path, root: Path | None = None) -> _TomlFile | Problem:
    if root is not None:
        real, folder = path.resolve(), root.resolve()
        if not real.is_relative_to(folder):
            # A link to /etc or another user's files would be read (and its lines shown in errors) as a profile.
            return Problem(
                path, 1, "(file)", f"a symlink to {real}, outside the profiles folder {folder}: refused; copy it in"
            )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        return Problem(path, line, "(file)", "not UTF-8 text")
    except OSError as exc:
        return Problem(path, 1, "(file)", f"cannot read: {exc.strerror}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _SYNTAX_POSITION.match(str(exc))
        if match is None:  # tomllib says "(at end of document)"
            return Problem(path, text.count("\n") + 1, "toml", str(exc))
        return Problem(path, int(match["line"]), "toml", f"{match['message']} (column {match['column']})")
    return _TomlFile(path, data, key_lines(text))


def _line_in(path: Path, loc: Loc) -> int:
    toml_file = _read_toml(path)
    return toml_file.line if isinstance(toml_file, Problem) else line_of(toml_file.lines, loc)


def _load_npc(path: Path, server: ServerProfile, server_file: _TomlFile, load: ServerLoad) -> None:
    npc_file = _read_toml(path, load.root)
    if isinstance(npc_file, Problem):
        _reject(load, path, [npc_file])
        return

    def origin(loc: Loc) -> tuple[_TomlFile, Loc]:
        """Blame the server's `[defaults]` for a value the NPC file does not set itself."""
        if _holds(npc_file.data, loc) or not _holds(server_file.data, ("defaults", *loc)):
            return npc_file, loc
        return server_file, ("defaults", *loc)

    try:
        npc = NpcProfile.model_validate(_with_defaults(npc_file.data, server.defaults))
    except ValidationError as exc:
        _reject(load, path, _validation_problems(exc, NpcProfile, origin))
        return
    npc, missing = _resolve_npc_files(npc, load.directory)
    problems = [_problem_at(origin, loc, message) for loc, message in missing]
    problems += _lore_key_problems(npc.lore, npc_file)
    if problems:
        _reject(load, path, problems)
        return
    if npc.id in load.npcs:
        message = f"duplicate NPC id '{npc.id}'; already defined in {load.npc_files[npc.id]}"
        _reject(load, path, [npc_file.problem(("id",), message)])
        return
    load.npcs[npc.id] = npc
    load.npc_files[npc.id] = path


def _reject(load: ServerLoad, path: Path, problems: list[Problem]) -> None:
    load.rejected_files.add(path)
    # A bad `[defaults]` value shows up once per NPC; report it once.
    load.problems.extend(p for p in sorted(problems, key=lambda p: p.line) if p not in load.problems)


def _problem_at(origin: _Origin, loc: Loc, message: str) -> Problem:
    toml_file, file_loc = origin(loc)
    return toml_file.problem(file_loc, message)


def _validation_problems(exc: ValidationError, model: type[BaseModel], origin: _Origin) -> list[Problem]:
    return [_problem_at(origin, tuple(error["loc"]), describe(error, model)) for error in exc.errors()]


def _lore_key_problems(lore: list[LoreEntry], toml_file: _TomlFile) -> list[Problem]:
    """Keys the lore matcher would refuse at the first turn (an empty key, a bad `/regex/`), found at load time."""
    problems = []
    for index, entry in enumerate(lore):
        for field_key in ("keys", "secondary_keys"):
            for position, key in enumerate(getattr(entry, field_key)):
                try:
                    compile_key(key)
                except LoreKeyError as exc:
                    problems.append(toml_file.problem(("lore", index, field_key, position), exc.message))
    return problems


def _holds(data: Any, loc: Loc) -> bool:
    for part in loc:
        inside_dict = isinstance(data, dict) and part in data
        inside_list = isinstance(data, list) and isinstance(part, int) and part < len(data)
        if inside_dict or inside_list:
            data = data[part]
        else:
            return False
    return True


def _with_defaults(npc: dict[str, Any], defaults: NpcDefaults) -> dict[str, Any]:
    merged = dict(npc)
    for section in ("llm", "voice", "world"):
        inherited: dict[str, object] = getattr(defaults, section)
        own = merged.get(section, {})
        if inherited and isinstance(own, dict):
            merged[section] = _deep_merge(inherited, own)
    return merged


def _deep_merge(base: Mapping[str, object], override: Mapping[str, object]) -> dict[str, object]:
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        if isinstance(below, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def _resolve(directory: Path, path: str) -> Path:
    resolved = Path(path).expanduser()
    return resolved if resolved.is_absolute() else (directory / resolved).resolve()


def _resolve_server_paths(server: ServerProfile, directory: Path) -> ServerProfile:
    if server.log_path is None:
        return server
    return server.model_copy(update={"log_path": str(_resolve(directory, server.log_path))})


def _resolve_npc_files(npc: NpcProfile, directory: Path) -> tuple[NpcProfile, list[tuple[Loc, str]]]:
    """Absolute voice and model paths, and what is missing on disk (location, message)."""
    missing: list[tuple[Loc, str]] = []
    voice, llm = npc.voice, npc.llm
    # The packaged voice is an installation matter (the `voice` extra), reported where speech is used, so a text-only
    # install still loads every NPC.
    if voice.model != PACKAGED:
        voice_path = _resolve(directory, voice.model)
        if not voice_path.is_file():
            missing.append((("voice", "model"), f"voice file not found: {voice_path}"))
        elif not voice_path.with_name(voice_path.name + ".json").is_file():
            missing.append((("voice", "model"), f"the voice's config file is missing: {voice_path}.json"))
        voice = voice.model_copy(update={"model": str(voice_path)})
    if llm.model is not None and (llm.backend == "embedded" or llm.model.endswith(".gguf")):
        model_path = _resolve(directory, llm.model)
        if not model_path.is_file():
            missing.append((("llm", "model"), f"model file not found: {model_path}"))
        llm = llm.model_copy(update={"model": str(model_path)})
    return npc.model_copy(update={"voice": voice, "llm": llm}), missing
