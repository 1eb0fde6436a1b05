"""Keep every NPC's prompt prefix warm in llama.cpp, so NPCs taking turns each skip re-reading their persona.

llama.cpp only reuses the KV prefix of the prompt it evaluated last. With two NPCs alternating, each turn would
re-evaluate the whole persona block (about a second for 420 tokens of SmolLM2 on two cores). `NpcPrefixCache`
keeps one KV snapshot per `GenerationOptions.cache_key`; llama-cpp-python consults it before each completion and
restores the snapshot when it shares a longer prefix with the new prompt than what is loaded.

`KvSnapshotLlama` makes the snapshots cheap: the stock `Llama.save_state` also copies the logits of every batch row
(about 90 MB for SmolLM2's vocabulary, 0.3-0.6 s per save or restore here), though they are recomputed after any
restore. Saving only sequence 0's KV cells takes about 5 ms.
"""

from __future__ import annotations

import ctypes
from collections import OrderedDict
from collections.abc import Sequence

import llama_cpp
import numpy as np
from llama_cpp import Llama, LlamaState
from llama_cpp.llama_cache import BaseLlamaCache

from host.llm.cpu_buffers import without_amx

_SEQ = 0  # llama-cpp-python keeps its one conversation in sequence 0


class KvSnapshotLlama(Llama):
    """A `Llama` whose state snapshots hold only the KV cells and token ids (see the module docstring), and whose
    weights never go to llama.cpp's crashing AMX kernels (host/llm/cpu_buffers.py)."""

    # `Llama.__init__` builds its model parameters and loads the model in one call; this setter is the one place
    # between the two where the parameters can be changed.
    @property
    def model_params(self) -> llama_cpp.llama_model_params:
        return self._model_params

    @model_params.setter
    def model_params(self, params: llama_cpp.llama_model_params) -> None:
        self._model_params = without_amx(params)

    def save_state(self) -> LlamaState:
        size = llama_cpp.llama_state_seq_get_size(self.ctx, _SEQ)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self.ctx, buffer, size, _SEQ)
        return LlamaState(
            input_ids=self.input_ids[: self.n_tokens].copy(),
            scores=np.empty((0, 0), dtype=np.single),
            n_tokens=self.n_tokens,
            llama_state=bytes(buffer)[:written],
            llama_state_size=written,
            seed=self._seed,
        )

    def load_state(self, state: LlamaState) -> None:
        memory = llama_cpp.llama_get_memory(self.ctx)
        llama_cpp.llama_memory_seq_rm(memory, _SEQ, -1, -1)
        buffer = (ctypes.c_uint8 * state.llama_state_size).from_buffer_copy(state.llama_state)
        if llama_cpp.llama_state_seq_set_data(self.ctx, buffer, state.llama_state_size, _SEQ) != state.llama_state_size:
            raise RuntimeError("llama.cpp refused to restore a KV snapshot")
        self.input_ids[: state.n_tokens] = state.input_ids
        self.n_tokens = state.n_tokens
        # As in Llama.load_state: the logits of the restored position are unknown until a token is decoded again.
        self._requires_eval = True


class NpcPrefixCache(BaseLlamaCache):
    """One KV snapshot per NPC (`active_key`), least recently used dropped first beyond `capacity_bytes`.

    Llama looks entries up by prompt tokens; this cache answers with the active NPC's snapshot and lets Llama decide
    (by comparing prefixes) whether restoring it beats what is loaded. Only one generation runs at a time per model,
    so the caller sets `active_key` right before each completion.
    """

    def __init__(self, capacity_bytes: int = 512 << 20) -> None:
        super().__init__(capacity_bytes)
        self.active_key: str | None = None
        self.last_prompt_tokens = 0
        self._states: OrderedDict[str, LlamaState] = OrderedDict()

    def begin(self, key: str | None) -> None:
        """A completion for `key`'s NPC starts (reset `active_key` to None when it ends)."""
        self.active_key = key
        self.last_prompt_tokens = 0

    @property
    def cache_size(self) -> int:
        return sum(state.llama_state_size for state in self._states.values())

    def keys(self) -> list[str]:
        return list(self._states)

    def _find_longest_prefix_key(self, key: tuple[int, ...]) -> tuple[int, ...] | None:
        return None  # entries are found by NPC, not by token prefix

    def __getitem__(self, key: Sequence[int]) -> LlamaState:
        self.last_prompt_tokens = len(key)
        if self.active_key is None or self.active_key not in self._states:
            raise KeyError(self.active_key)
        self._states.move_to_end(self.active_key)
        return self._states[self.active_key]

    def __contains__(self, key: Sequence[int]) -> bool:
        return self.active_key is not None and self.active_key in self._states

    def __setitem__(self, key: Sequence[int], value: LlamaState) -> None:
        if self.active_key is None:
            return
        self._states[self.active_key] = value
        self._states.move_to_end(self.active_key)
        while self.cache_size > self.capacity_bytes and len(self._states) > 1:
            self._states.popitem(last=False)
