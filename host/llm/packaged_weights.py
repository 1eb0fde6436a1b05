"""The packaged SmolLM2 as Q8_0 weights, converted once from the Q4_1 file it ships as.

llama.cpp reads a prompt through SmolLM2's Q4_1 weights at 300-380 tokens/s on two x86 cores, and through the same
weights as Q8_0 at 500-560: on the voice path the first audio of an NPC whose turn brings a lore note came 60-100
ms sooner at the median (docs/llm.md). Q8_0 holds every Q4_1 weight almost exactly: on the example village's
prompts the converted model picks the same next token as the packaged one 95.6% of the time (mean KL divergence
0.007), where a Q4_0 conversion, faster still, agreed only 67% of the time. It costs 44 MB more memory (a 138 MB
file for 94) and writes a token about 8% slower, which matters less: the first sentence is a handful of tokens, the
prompt often a hundred.

The conversion (llama.cpp's own quantizer, under a second) runs once per machine: the file is kept in the user's
cache directory, named by a hash of the source file's content (a reinstall of the same package reuses it, a new
version replaces it), written under a temporary name and flushed to disk before it takes its name, so a host never
reads half a file. Where it cannot be written, the packaged file is used as it ships and the reason is logged; a
kept file that does not load is removed and the packaged file runs (`EmbeddedLLM.warm`).
"""

from __future__ import annotations

import ctypes
import glob
import hashlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import llama_cpp
import platformdirs

log = logging.getLogger(__name__)

CACHE_DIR = platformdirs.user_cache_path("npc-host") / "models"
# A conversion takes about a second: a partial file this old was left by a process killed while converting.
STALE_PARTIAL_S = 3600.0
_converting = threading.Lock()  # two models warming at once in one process convert once


def q8_0_weights(source: Path, directory: Path = CACHE_DIR) -> Path:
    """`source` (a GGUF file) converted to Q8_0 in `directory`, made once and reused; `source` itself when the
    conversion cannot be made. Blocking: call it from a thread."""
    with _converting:
        try:
            with source.open("rb") as model:
                digest = hashlib.file_digest(model, "sha256").hexdigest()[:16]
        except OSError as exc:
            log.warning("llm: cannot read %s (%s)", source, exc)
            return source
        target = directory / f"{source.stem}.as-Q8_0.{digest}.gguf"
        if target.is_file():
            return target
        if _convert(source, target):
            _remove_leftovers(source, target)
            log.info("llm: %s converted to Q8_0 once, kept as %s", source.name, target)
            return target
        return source


def _convert(source: Path, target: Path) -> bool:
    """Write `target` through a partial file, flushed to disk before it takes the name: a file under the name is
    whole. False (with the reason logged) when it cannot be made."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
        os.close(handle)
    except OSError as exc:
        log.warning("llm: cannot keep converted weights in %s (%s); using %s as it ships", target.parent, exc, source)
        return False
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True  # the source is quantized already (Q4_1)
    params.nthread = os.cpu_count() or 1
    # llama.cpp logs every tensor it converts through llama-cpp-python's logger; only its errors are wanted here.
    llama_log = logging.getLogger("llama-cpp-python")
    level = llama_log.level
    llama_log.setLevel(logging.ERROR)
    try:
        status = llama_cpp.llama_model_quantize(str(source).encode(), partial.encode(), ctypes.byref(params))
        if status != 0:
            log.warning("llm: llama.cpp could not convert %s to Q8_0 (status %d); using it as it ships", source, status)
            return False
        with open(partial, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
        return True
    except OSError as exc:  # the disk filled up, say
        log.warning("llm: cannot keep converted weights in %s (%s); using %s as it ships", target.parent, exc, source)
        return False
    finally:
        llama_log.setLevel(level)
        Path(partial).unlink(missing_ok=True)


def _remove_leftovers(source: Path, kept: Path) -> None:
    """Conversions of other versions of `source`, and partial files of killed processes: the cache never grows
    beyond one file per model."""
    now = time.time()
    stem = glob.escape(source.stem)
    for path in [*kept.parent.glob(f"{stem}.as-Q8_0.*.gguf"), *kept.parent.glob(f".{stem}.as-Q8_0.*.partial")]:
        try:
            stale = path.suffix == ".partial" and now - path.stat().st_mtime > STALE_PARTIAL_S
            if stale or (path.suffix == ".gguf" and path != kept):
                path.unlink()
        except OSError as exc:  # another process removed it first, or it is not ours to remove
            log.debug("llm: %s left in the weights cache: %s", path, exc)
