"""Small JSON state files (pydantic models) that survive crashes and never crash the host when damaged.

Writes go to a temporary file in the same directory, are fsynced, then renamed over the old file: a reader sees the
old content or the new, never half of one. A file that does not parse is moved aside (`<name>.corrupt-<time>`),
reported with both paths, and treated as absent. These functions block: call them through `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)


def write_model(path: Path, model: BaseModel) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = model.model_dump_json(indent=1).encode("utf-8")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def read_model(path: Path, model_type: type[M]) -> M | None:
    """The model stored at `path`; None when the file is missing or was corrupt (and has been moved aside)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return model_type.model_validate_json(data)
    except ValidationError as exc:
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
        os.replace(path, aside)
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "file"
        log.error("%s is corrupt (%s: %s); moved it to %s and started afresh", path, where, first["msg"], aside)
        return None
