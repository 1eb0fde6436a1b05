"""The per-NPC prefix cache of the embedded backend: one snapshot per NPC, bounded in bytes, least recent out first."""

from __future__ import annotations

import numpy as np
import pytest
from llama_cpp import LlamaState

from host.llm.prefix_cache import NpcPrefixCache

PROMPT = (1, 2, 3)


def _snapshot(size: int) -> LlamaState:
    return LlamaState(
        input_ids=np.zeros(0, dtype=np.intc),
        scores=np.empty((0, 0), dtype=np.single),
        n_tokens=0,
        llama_state=bytes(size),
        llama_state_size=size,
        seed=0,
    )


def _store(cache: NpcPrefixCache, npc: str, size: int) -> LlamaState:
    cache.active_key = npc
    snapshot = _snapshot(size)
    cache[PROMPT] = snapshot
    return snapshot


def test_each_npc_gets_its_own_snapshot_back() -> None:
    cache = NpcPrefixCache(capacity_bytes=1000)
    bram, greta = _store(cache, "village/bram", 100), _store(cache, "village/greta", 100)
    cache.active_key = "village/bram"
    assert PROMPT in cache
    assert cache[PROMPT] is bram
    cache.active_key = "village/greta"
    assert cache[PROMPT] is greta
    cache.active_key = "village/hilde"
    assert PROMPT not in cache
    with pytest.raises(KeyError):
        cache[PROMPT]


def test_the_cache_stays_within_its_bytes_dropping_the_least_recently_used_npc() -> None:
    cache = NpcPrefixCache(capacity_bytes=250)
    _store(cache, "bram", 100)
    _store(cache, "greta", 100)
    cache.active_key = "bram"
    _ = cache[PROMPT]  # Bram spoke again: Greta is now the least recently used
    _store(cache, "hilde", 100)
    assert cache.keys() == ["bram", "hilde"]
    assert cache.cache_size <= 250
    for npc in range(100):
        _store(cache, f"npc{npc}", 100)
    assert cache.cache_size <= 250
    assert cache.keys() == ["npc98", "npc99"]


def test_a_turn_without_a_cache_key_stores_nothing() -> None:
    cache = NpcPrefixCache(capacity_bytes=1000)
    cache.active_key = None
    cache[PROMPT] = _snapshot(100)
    assert cache.keys() == []
    assert PROMPT not in cache
