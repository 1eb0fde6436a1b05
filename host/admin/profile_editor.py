"""Editing profile files from the page with the same checks as `npc-host profiles check`.

A change is tried on a scratch copy of the server's folder first: the loader reads the copy, and only a file with no
problem is written to the real folder (a temporary file renamed over the old one, so a reader never sees half a
file). The profile watcher of every process then hot-reloads it. Forms edit the file's values in place with tomlkit,
so comments and layout stay as their author left them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomlkit
from pydantic import BaseModel
from tomlkit.items import AoT, Table

from host.profiles.card_import import import_card
from host.profiles.loader import SERVER_FILE, load_server
from host.profiles.problems import Problem, ProfileError, field_name
from host.profiles.schema import NpcProfile

FILE_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
MAX_PROFILE_BYTES = 256 * 1024

FieldKind = Literal["text", "multiline", "number", "integer", "bool", "list"]


class FormField(BaseModel):
    path: str
    kind: FieldKind
    value: str | float | bool | list[str]


class FieldProblem(BaseModel):
    field: str
    line: int
    message: str


class EditRejectedError(ProfileError):
    code = "profile_invalid"

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems) or "not saved")
        self.field_problems = problems


@dataclass(frozen=True)
class ProfileFile:
    server_dir: Path
    name: str  # `server.toml` or `<npc>.toml`

    @property
    def path(self) -> Path:
        return self.server_dir / self.name


def profile_file(root: Path, server_folder: str, name: str) -> ProfileFile:
    """The file `name` of a server folder under `root`; names that could leave the folder are refused."""
    stem = name.removesuffix(".toml")
    if (
        not name.endswith(".toml")
        or not stem
        or not set(stem) <= FILE_NAME_CHARS
        or server_folder in ("", ".", "..")
        or "/" in server_folder
        or "\\" in server_folder
    ):
        raise ProfileError(f"{server_folder}/{name} is not a profile file name", code="profile_name")
    return ProfileFile(root / server_folder, name)


def form_fields(text: str) -> list[FormField]:
    """Every value of the file as a form field, in file order; tables and lists of tables are walked into."""
    return list(_walk(tomlkit.parse(text), ()))


def _walk(container: Any, loc: tuple[str | int, ...]) -> Iterator[FormField]:
    items = enumerate(container) if isinstance(container, list) else container.items()
    for key, value in items:
        here = (*loc, key)
        plain = value.unwrap() if hasattr(value, "unwrap") else value
        if (
            isinstance(value, (Table, AoT))
            or isinstance(plain, dict)
            or (isinstance(plain, list) and plain and all(isinstance(v, dict) for v in plain))
        ):
            yield from _walk(value, here)
        elif isinstance(plain, list):
            yield FormField(path=field_name(here), kind="list", value=[str(v) for v in plain])
        elif isinstance(plain, bool):
            yield FormField(path=field_name(here), kind="bool", value=plain)
        elif isinstance(plain, int):
            yield FormField(path=field_name(here), kind="integer", value=float(plain))
        elif isinstance(plain, float):
            yield FormField(path=field_name(here), kind="number", value=plain)
        else:
            text = str(plain)
            kind: FieldKind = "multiline" if "\n" in text or len(text) > 80 else "text"
            yield FormField(path=field_name(here), kind=kind, value=text)


def apply_values(text: str, values: dict[str, Any]) -> str:
    """The file with the form's values put in place of the old ones; a path the file does not hold is a problem."""
    document = tomlkit.parse(text)
    known = {f.path: f for f in _walk(document, ())}
    problems = []
    for path, value in values.items():
        found = known.get(path)
        if found is None:
            problems.append(FieldProblem(field=path, line=0, message="not a field of this file"))
            continue
        _set(document, _parse_path(path), _typed(found.kind, value))
    if problems:
        raise EditRejectedError(problems)
    return tomlkit.dumps(document)


def _typed(kind: FieldKind, value: Any) -> Any:
    # A value the schema would refuse is passed on as typed, so the loader names it next to its field.
    if kind == "list":
        items = value if isinstance(value, list) else str(value).splitlines()
        array = tomlkit.array()
        array.extend(str(item) for item in items if str(item).strip())
        if len(array) > 2:
            array.multiline(True)
        return array
    if kind in ("number", "integer") and isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if kind == "integer" and number.is_integer() else number
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "multiline" and isinstance(value, str) and "\n" in value:
        return tomlkit.string(value, multiline=True)
    return value


def _parse_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for dotted in path.split("."):
        name, _, rest = dotted.partition("[")
        if name:
            parts.append(name)
        for index in filter(None, rest.replace("]", "").split("[")) if rest else []:
            parts.append(int(index))
    return parts


def _set(document: Any, parts: list[str | int], value: Any) -> None:
    target = document
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


def check(file: ProfileFile, text: str) -> list[FieldProblem]:
    """The problems `npc-host profiles check` would report for `file` holding `text` (none: it may be saved)."""
    return _checked(file, text)[0]


@dataclass(frozen=True)
class DraftNpc:
    server: str  # the server's name from its server.toml (the folder may be named otherwise)
    npc: NpcProfile


def draft_npc(file: ProfileFile, text: str) -> DraftNpc:
    """The NPC an unsaved `text` of the NPC file `file` describes, checked like `check`; else `EditRejectedError`."""
    problems, draft = _checked(file, text)
    if problems:
        raise EditRejectedError(problems)
    if draft is None:
        raise EditRejectedError([FieldProblem(field="(file)", line=0, message="only an NPC file can try a line")])
    return draft


def _checked(file: ProfileFile, text: str) -> tuple[list[FieldProblem], DraftNpc | None]:
    if len(text.encode()) > MAX_PROFILE_BYTES:
        return [FieldProblem(field="(file)", line=0, message=f"larger than {MAX_PROFILE_BYTES // 1024} KiB")], None
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", 0) or 0
        return [FieldProblem(field="(file)", line=line, message=f"not valid TOML: {exc}")], None
    with tempfile.TemporaryDirectory(prefix="npc-host-edit-") as scratch:
        copy = Path(scratch) / file.server_dir.name
        if file.server_dir.is_dir():
            shutil.copytree(file.server_dir, copy, symlinks=True)
        else:
            copy.mkdir()
        (copy / file.name).write_text(text, encoding="utf-8")
        load = load_server(copy)
        problems = [_field_problem(p) for p in load.problems if _concerns(p, copy, file.name)]
        npc = next((load.npcs[npc_id] for npc_id, path in load.npc_files.items() if path.name == file.name), None)
        return problems, None if npc is None else DraftNpc(load.name, npc)


def _concerns(problem: Problem, copy: Path, name: str) -> bool:
    # A broken server.toml stops every NPC file from loading, so its problems concern any edit of the folder.
    return problem.path.name == name or problem.path == copy / SERVER_FILE


def _field_problem(problem: Problem) -> FieldProblem:
    return FieldProblem(field=problem.field, line=problem.line, message=problem.message)


def save(file: ProfileFile, text: str) -> None:
    """Write `text` to `file` if it passes `check`, atomically; else raise `EditRejectedError`."""
    problems = check(file, text)
    if problems:
        raise EditRejectedError(problems)
    write_atomically(file.path, text)


def write_atomically(path: Path, text: str) -> None:
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


NPC_TEMPLATE = """# {name}: created on the admin page from the template. The format is described in docs/profiles.md.

id = "{id}"
name = "{name}"

[persona]
description = "Describe who {name} is, in two or three sentences."
personality = ""
speaking_style = "Short, friendly sentences."

[world]
position = {{ x = 0.0, y = 64.0, z = 0.0 }}
hearing_range = 10.0
speaking_range = 20.0
"""


def create_from_template(file: ProfileFile, npc_id: str, name: str) -> None:
    if file.path.exists():
        raise ProfileError(f"{file.name} already exists", code="profile_exists")
    save(file, NPC_TEMPLATE.format(id=npc_id, name=name.replace('"', "'")))


def create_from_card(server_dir: Path, card: Path, npc_id: str | None) -> Path:
    """Import a SillyTavern card into a scratch copy, check it there, then move it into the real folder."""
    with tempfile.TemporaryDirectory(prefix="npc-host-card-") as scratch:
        copy = Path(scratch) / server_dir.name
        shutil.copytree(server_dir, copy, symlinks=True)
        result = import_card(card, copy, npc_id=npc_id)
        text = result.path.read_text(encoding="utf-8")
    target = ProfileFile(server_dir, result.path.name)
    if target.path.exists():
        raise ProfileError(f"{target.name} already exists", code="profile_exists")
    save(target, text)
    return target.path
