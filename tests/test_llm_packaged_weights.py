"""The packaged SmolLM2 converted once to Q8_0 weights (host/llm/packaged_weights.py): made once and kept, made anew
for another source file, never half-read, and the file as shipped when no copy can be kept."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import llama_cpp
import pytest

from host.config import Settings
from host.llm.base import ChatMessage, GenerationOptions
from host.llm.embedded import EmbeddedLLM
from host.llm.factory import make_llm
from host.llm.packaged_weights import q8_0_weights
from host.packaged_models import smollm2_path

Q8_0 = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
Q4_1 = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1


def file_type(path: Path) -> int:
    """The GGUF file's weight type (`general.file_type`), as llama.cpp reads it."""
    reader = llama_cpp.Llama(str(path), n_ctx=64, verbose=False, vocab_only=True)
    try:
        return int(reader.metadata["general.file_type"])
    finally:
        reader.close()


def test_the_packaged_model_is_converted_once_and_kept(tmp_path: Path) -> None:
    source = smollm2_path()
    converted = q8_0_weights(source, tmp_path)
    assert converted.parent == tmp_path and converted != source
    assert file_type(source) == Q4_1
    assert file_type(converted) == Q8_0
    made = converted.stat().st_mtime_ns
    assert q8_0_weights(source, tmp_path) == converted
    assert converted.stat().st_mtime_ns == made  # not made again
    assert [p.name for p in tmp_path.iterdir()] == [converted.name]  # no partial file left behind


def test_a_new_version_of_the_model_replaces_the_old_conversion(tmp_path: Path) -> None:
    source = tmp_path / "model" / smollm2_path().name
    source.parent.mkdir()
    shutil.copyfile(smollm2_path(), source)
    cache = tmp_path / "cache"
    first = q8_0_weights(source, cache)
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 10**9))  # reinstalled, same content
    assert q8_0_weights(source, cache) == first
    left_by_a_killed_process = cache / f".{first.name}.x.partial"
    left_by_a_killed_process.write_bytes(b"half a model")
    os.utime(left_by_a_killed_process, (0, 0))
    with source.open("r+b") as model:  # a new version of the file: other content
        model.seek(-1, os.SEEK_END)
        last = model.read(1)
        model.seek(-1, os.SEEK_END)
        model.write(bytes([last[0] ^ 1]))
    second = q8_0_weights(source, cache)
    assert second != first and second.is_file()
    assert sorted(p.name for p in cache.iterdir()) == [second.name]  # the old conversion and the leftover are gone


async def test_a_damaged_conversion_is_removed_and_the_packaged_file_runs(caplog: pytest.LogCaptureFixture) -> None:
    converted = q8_0_weights(smollm2_path())
    # A disk that lost the end of the file. Written as a new file: the other tests' model maps the old one.
    damaged = converted.with_suffix(".damaged")
    damaged.write_bytes(converted.read_bytes()[: converted.stat().st_size // 2])
    damaged.replace(converted)
    llm = EmbeddedLLM(context_tokens=1024, threads=1)  # not the shared model of the other tests
    try:
        with caplog.at_level(logging.WARNING, logger="host.llm.embedded"):
            loaded = await llm.warm()
        assert file_type(Path(loaded.llama.model_path)) == Q4_1
        assert "removing it" in caplog.text and not converted.exists()
    finally:
        await llm.aclose()
    assert file_type(q8_0_weights(smollm2_path())) == Q8_0  # made again whole


def test_without_a_writable_cache_the_model_runs_as_shipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would be")
    with caplog.at_level(logging.WARNING, logger="host.llm.packaged_weights"):
        assert q8_0_weights(smollm2_path(), blocked / "models") == smollm2_path()
    assert "cannot keep converted weights" in caplog.text and str(blocked) in caplog.text


async def test_the_host_runs_the_packaged_model_as_q8_0_by_default() -> None:
    llm = make_llm(Settings())
    assert isinstance(llm, EmbeddedLLM)
    loaded = await llm.warm()
    assert file_type(Path(loaded.llama.model_path)) == Q8_0
    options = GenerationOptions(max_tokens=16, seed=3, temperature=0.0)
    line = [ChatMessage(role="user", content="Hello! Do you have a room for the night?")]
    reply = "".join([piece async for piece in llm.stream(line, options)])
    assert reply.strip()
    as_shipped = make_llm(Settings(llm={"packaged_weights": "as_shipped"}))
    assert isinstance(as_shipped, EmbeddedLLM)
    assert file_type(Path((await as_shipped.warm()).llama.model_path)) == Q4_1
