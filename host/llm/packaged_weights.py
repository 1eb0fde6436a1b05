"""The packaged SmolLM2 as Q8_0 weights, converted once from the Q4_1 file it ships as.

llama.cpp reads a prompt through SmolLM2's Q4_1 weights at 300-380 tokens/s on two x86 cores, and through the same
weights as Q8_0 at 500-560: on the voice path that is 50-90 ms of an NPC's first audio when its turn brings a lore
note (docs/llm.md). Q8_0 holds every Q4_1 weight almost exactly: on the example village's prompts the converted
model picks the same next token as the packaged one 95.6% of the time (mean KL divergence 0.007), where a Q4_0
conversion, faster still, agreed only 67% of the time. It costs 44 MB more memory (a 138 MB file for 94) and
writes a token about 8% slower, which matters less: the first sentence is a handful of tokens, the prompt often a
hundred.

The conversion (llama.cpp's own quantizer, under a second) runs once per machine: the file is kept in the user's
cache directory, named by the source file's size and modification time, and written under a temporary name first,
so two hosts starting at once never read half a file. Where it cannot be written, the packaged file is used as it
ships and the reason is logged.
"""

from __future__ import annotations

import ctypes
import logging
import os
import tempfile
from pathlib import Path

import llama_cpp
import platformdirs

log = logging.getLogger(__name__)

CACHE_DIR = platformdirs.user_cache_path("npc-host") / "models"


def q8_0_weights(source: Path, directory: Path = CACHE_DIR) -> Path:
    """`source` (a GGUF file) converted to Q8_0 in `directory`, made once and reused; `source` itself when the
    conversion cannot be made. Blocking: call it from a thread."""
    stat = source.stat()
    target = directory / f"{source.stem}.{stat.st_size:x}-{stat.st_mtime_ns:x}.Q8_0.gguf"
    if target.is_file():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".partial")
        os.close(handle)
    except OSError as exc:
        log.warning("llm: cannot keep converted weights in %s (%s); using %s as it ships", directory, exc, source.name)
        return source
    try:
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
        params.allow_requantize = True  # the source is quantized already (Q4_1)
        params.nthread = os.cpu_count() or 1
        # llama.cpp logs every tensor it converts through llama-cpp-python's logger; only its errors are wanted.
        logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
        status = llama_cpp.llama_model_quantize(str(source).encode(), partial.encode(), ctypes.byref(params))
        if status != 0:
            log.warning("llm: llama.cpp could not convert %s to Q8_0 (status %d); using it as it ships", source, status)
            return source
        os.replace(partial, target)
    except OSError as exc:  # the disk filled up, say
        log.warning("llm: cannot keep converted weights in %s (%s); using %s as it ships", directory, exc, source.name)
        return source
    finally:
        Path(partial).unlink(missing_ok=True)
    log.info("llm: %s converted to Q8_0 once, kept as %s", source.name, target)
    return target
