"""Problems found in profile files, each pointing at a file, a line and a field, worded for the person editing it."""

from __future__ import annotations

import difflib
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from host.errors import NpcHostError
from host.profiles.key_lines import Loc

_ENV_VAR_NAME = r"^[A-Z_][A-Z0-9_]*$"
# Regex patterns of the schema explained in words, so "bad id" does not read as a regular expression.
_PATTERN_WORDS = {
    r"^[a-z][a-z0-9_]{0,31}$": "must be 1-32 lowercase letters, digits or underscores, starting with a letter",
    r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$": "must be 1-64 letters, digits, '_', '.' or '-', not starting with a symbol",
    r"^[A-Za-z0-9_]{3,16}$": "must be a Minecraft player name: 3-16 letters, digits or underscores",
    _ENV_VAR_NAME: "must be an environment variable name: uppercase letters, digits and underscores",
}


@dataclass(frozen=True, order=True)
class Problem:
    path: Path
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"


class ProfileError(NpcHostError):
    """A profile or card that cannot be used; `problems` holds the details when there are several."""

    code = "profile"

    def __init__(self, message: str, *, code: str | None = None, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message, code=code)
        self.problems = problems


def field_name(loc: Loc) -> str:
    """`("lore", 2, "keys")` -> `lore[2].keys`; the whole file is `(file)`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(file)"


def describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    """A pydantic error as one sentence for a profile author; `model` is the model validated at the file's root."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_field(error["loc"], model)
    if kind == "missing":
        return "required field is missing"
    if kind == "string_pattern_mismatch":
        pattern = str((error.get("ctx") or {}).get("pattern", ""))
        if pattern == _ENV_VAR_NAME:
            # People paste the secret itself here; echoing it would put it in the terminal and the host's log.
            return f"{_PATTERN_WORDS[pattern]}; it names the variable that holds the secret, never the secret itself"
        if pattern in _PATTERN_WORDS:
            return f"{_PATTERN_WORDS[pattern]} (got {error['input']!r})"
    message = error["msg"].removeprefix("Value error, ")
    if isinstance(error["input"], str | int | float | bool):
        return f"{message} (got {error['input']!r})"
    return message


def _unknown_field(loc: tuple[str | int, ...], model: type[BaseModel]) -> str:
    known = _fields_at(model, loc[:-1])
    name = str(loc[-1])
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown field; did you mean '{close[0]}'?"
    return f"unknown field; expected one of: {', '.join(known)}" if known else "unknown field"


def _fields_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> list[str]:
    """The field names of the model found at `loc` below `model` (through lists, dicts and optionals)."""
    annotation: Any = model
    for part in loc:
        if get_origin(annotation) in (list, dict):  # `part` is an index or a key: step into the item type
            annotation = get_args(annotation)[-1]
            continue
        found = _model_in(annotation)
        if found is None or not isinstance(part, str) or part not in found.model_fields:
            return []
        annotation = found.model_fields[part].annotation
    found = _model_in(annotation)
    return list(found.model_fields) if found is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                return arg
    return None
