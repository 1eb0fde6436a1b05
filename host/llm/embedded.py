"""The default backend: llama.cpp in this process, on the packaged SmolLM2 or any GGUF file.

A model loads once per process (per file, context size and thread count) and is shared by every `EmbeddedLLM` on
it. Its llama.cpp context is not thread-safe, so each model owns one worker thread: generations queue there, one
at a time, and never block the event loop. Pieces cross to the event loop through an asyncio queue; closing or
cancelling the async iteration stops the worker at its next token. The worker writes a piece only when the reader
asks for one: a reader that stops pulling (the voice path, while the first sentence's audio is made on the same
cores) stops generation at once instead of competing with it. Even one token written ahead costs Piper dearly there:
llama.cpp's threads meet at a barrier per layer, and beside Piper's a token took 140 ms instead of 14. Each NPC's
prompt prefix stays warm across turns through `NpcPrefixCache`, keyed by `GenerationOptions.cache_key`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
from llama_cpp import llama_chat_format

from host import metrics
from host.config import PackagedWeights
from host.llm.base import ChatMessage, GenerationOptions, LLMError
from host.llm.packaged_weights import q8_0_weights
from host.llm.prefix_cache import KvSnapshotLlama, NpcPrefixCache
from host.packaged_models import smollm2_path

log = logging.getLogger(__name__)

CHAT_TEMPLATE_KEY = "tokenizer.chat_template"
# The NPCs' KV snapshots together, per model; the cache is shared, so one size for every user of the model.
PREFIX_CACHE_BYTES = 512 << 20
_ASKED_POLL_S = 0.05  # how often a worker waiting for the reader to ask checks whether it was stopped


@dataclass(frozen=True)
class GenerationStats:
    """What llama.cpp did for one reply; `prompt_tokens_evaluated` is its own count (prompt tokens decoded)."""

    prompt_tokens: int
    prompt_tokens_evaluated: int
    pieces: int
    cancelled: bool

    @property
    def prompt_tokens_reused(self) -> int:
        return max(0, self.prompt_tokens - self.prompt_tokens_evaluated)


@dataclass
class LoadedModel:
    llama: KvSnapshotLlama
    prefix_cache: NpcPrefixCache
    worker: ThreadPoolExecutor
    load_seconds: float


@dataclass(frozen=True)
class _Finished:
    error: BaseException | None = None


_models: dict[tuple[Path, int, int, int, str | None], LoadedModel] = {}
_models_lock = threading.Lock()


def check_chat_format(path: Path, chat_format: str) -> None:
    """A configured chat format must be one llama-cpp-python knows; the error lists the ones it does."""
    try:
        llama_chat_format.get_chat_completion_handler(chat_format)
    except llama_chat_format.LlamaChatCompletionHandlerNotFoundException as exc:  # its message lists the known ones
        raise LLMError("embedded", str(path), f"unknown chat format {chat_format!r}: {exc}") from None


def load_model(
    path: Path, context_tokens: int, threads: int, batch_threads: int, chat_format: str | None = None
) -> LoadedModel:
    """Load (once per process) and return the model; blocking, so call it from a thread. Without `chat_format`
    the GGUF must carry its own chat template: llama-cpp-python would otherwise fall back to Llama 2's format,
    which no small chat model was trained on and which loses the system message, so such a file is refused."""
    key = (path.resolve(), context_tokens, threads, batch_threads, chat_format)
    with _models_lock:
        if key in _models:
            return _models[key]
        if not path.is_file():
            raise LLMError(
                "embedded", str(path), "model file not found (NPC_HOST_LLM__MODEL_PATH, or the NPC's [llm] model)"
            )
        if chat_format is not None:
            check_chat_format(path, chat_format)
        started = time.perf_counter()
        try:
            llama = KvSnapshotLlama(
                model_path=str(path),
                n_ctx=context_tokens,
                n_threads=threads,
                n_threads_batch=batch_threads,
                chat_format=chat_format,
                verbose=False,
            )
        except ValueError as exc:
            raise LLMError("embedded", str(path), f"llama.cpp could not load the model: {exc}") from exc
        if chat_format is None and CHAT_TEMPLATE_KEY not in llama.metadata:
            llama.close()
            raise LLMError(
                "embedded",
                str(path),
                "the GGUF file has no chat template (is it a base model rather than an instruction-tuned one?); "
                "name its chat format in NPC_HOST_LLM__CHAT_FORMAT or the NPC's `llm.chat_format` (e.g. chatml, "
                "gemma, llama-3, mistral-instruct, phi-3)",
            )
        cache = NpcPrefixCache(PREFIX_CACHE_BYTES)
        llama.set_cache(cache)
        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{path.stem}")
        model = LoadedModel(llama, cache, worker, time.perf_counter() - started)
        metrics.MODEL_LOAD_SECONDS.labels(kind="llm", model=path.name).set(model.load_seconds)
        _models[key] = model
        return model


class EmbeddedLLM:
    """`LLM` on llama.cpp in-process. `await warm()` loads the model ahead of the first turn (else the first does)."""

    name = "embedded"

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        context_tokens: int = 2048,
        threads: int | None = None,
        chat_format: str | None = None,
        packaged_weights: PackagedWeights = "q8_0",
    ) -> None:
        """`packaged_weights`: without a `model_path`, "q8_0" runs the packaged SmolLM2 as Q8_0 weights, converted
        once (host/llm/packaged_weights.py; `[llm] packaged_weights`)."""
        self._model_path = model_path
        self._packaged_weights = packaged_weights
        self._context_tokens = context_tokens
        self._chat_format = chat_format
        cores = os.cpu_count() or 1
        # Every core, token by token too: generation never runs beside Piper (the reader asks for no piece while
        # the first audio is made), and two threads write a token in 12 ms where one takes 21 on a 2-core machine.
        self._threads = threads or cores
        self._batch_threads = threads or cores
        self._workers: set[asyncio.Future[GenerationStats]] = set()
        self._loaded: LoadedModel | None = None
        self.last_stats: GenerationStats | None = None
        """Of the most recent reply of this instance that ended (finished, failed late or cancelled)."""

    @property
    def chat_format(self) -> str | None:
        """The configured chat format; None = the GGUF's own template."""
        return self._chat_format

    @property
    def model_path(self) -> Path:
        return self._model_path if self._model_path is not None else smollm2_path()

    async def warm(self) -> LoadedModel:
        """Load the model in a worker thread (once per process) and return it."""
        # Later turns skip the thread hop: the shared default pool may be busy with speech work.
        if self._loaded is None:
            self._loaded = await asyncio.to_thread(self._load)
        return self._loaded

    def _load(self) -> LoadedModel:
        load = functools.partial(
            load_model,
            context_tokens=self._context_tokens,
            threads=self._threads,
            batch_threads=self._batch_threads,
            chat_format=self._chat_format,
        )
        if self._model_path is None and self._packaged_weights == "q8_0":
            converted = q8_0_weights(self.model_path)
            if converted != self.model_path:
                try:
                    return load(converted)
                except LLMError as exc:  # damaged on disk since: made again at the next start
                    log.warning("llm: %s; removing it and running the packaged file as it ships", exc.message)
                    converted.unlink(missing_ok=True)
        return load(self.model_path)

    async def stream(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> AsyncIterator[str]:
        model = await self.warm()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | _Finished] = asyncio.Queue()
        stop = threading.Event()
        asked = threading.Semaphore(0)  # one permit per piece the reader waits for

        def wait_until_asked() -> bool:
            while not asked.acquire(timeout=_ASKED_POLL_S):
                if stop.is_set():
                    return False
            return True

        def emit(item: str | _Finished) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone: nobody is listening any more
                stop.set()

        generate = functools.partial(_generate, wait_until_asked=wait_until_asked, emit=emit, stop=stop)
        worker = loop.run_in_executor(model.worker, generate, model, messages, options)
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)
        try:
            while True:
                asked.release()
                item = await queue.get()
                if isinstance(item, str):
                    yield item
                    continue
                if item.error is not None:
                    detail = f"generation failed: {type(item.error).__name__}: {item.error}"
                    raise LLMError(self.name, model.llama.model_path, detail) from item.error
                return
        finally:
            stop.set()
            # Wait for the worker without cancelling it: it stops at its next token and must leave llama.cpp idle.
            await asyncio.wait({worker})
            if not worker.cancelled() and worker.exception() is None:
                self.last_stats = worker.result()

    async def prefill(self, messages: Sequence[ChatMessage], options: GenerationOptions) -> int:
        """Read `messages` into the prefix snapshot of `options.cache_key` with a one-token completion (llama.cpp
        keeps what it read; the token is thrown away); returns the prompt tokens evaluated. It queues behind any
        generation on the model's worker and does not change `last_stats`."""
        model = await self.warm()
        reading = options.model_copy(update={"max_tokens": 1, "stop": (), "json_schema": None})
        finished: list[str | _Finished] = []
        read = functools.partial(_generate, wait_until_asked=lambda: True, emit=finished.append, stop=threading.Event())
        stats = await asyncio.get_running_loop().run_in_executor(model.worker, read, model, messages, reading)
        if isinstance(end := finished[-1], _Finished) and end.error is not None:
            raise LLMError(self.name, model.llama.model_path, f"reading ahead failed: {end.error!r}") from end.error
        return stats.prompt_tokens_evaluated

    async def aclose(self) -> None:
        """Wait for replies still being stopped; the model stays loaded for the other users of the process."""
        if self._workers:
            await asyncio.wait(set(self._workers))


def _generate(
    model: LoadedModel,
    messages: Sequence[ChatMessage],
    options: GenerationOptions,
    *,
    wait_until_asked: Callable[[], bool],
    emit: Callable[[str | _Finished], None],
    stop: threading.Event,
) -> GenerationStats:
    """Run one completion on the model's worker thread, writing each piece when the reader asks for it (the next
    token is not computed before), until done or `stop` is set (`wait_until_asked` is then False)."""
    llama, cache = model.llama, model.prefix_cache
    if stop.is_set():
        emit(_Finished())
        return GenerationStats(0, 0, 0, cancelled=True)
    evaluated_before = _evaluated(llama)
    pieces = 0
    cancelled = False
    try:
        cache.begin(options.cache_key)
        with contextlib.closing(_completion_pieces(llama, messages, options)) as texts:
            while True:
                if not wait_until_asked():
                    cancelled = True
                    break
                text = next(texts, None)
                if text is None:
                    break
                if stop.is_set():
                    cancelled = True
                    break
                pieces += 1
                emit(text)
        if cancelled and options.cache_key is not None:
            # Llama snapshots only completions that ran to the end; keep this NPC's prefix after a barge-in too.
            cache[()] = llama.save_state()
        emit(_Finished())
    except Exception as exc:
        emit(_Finished(error=exc))
    finally:
        cache.active_key = None
    return GenerationStats(cache.last_prompt_tokens, _evaluated(llama) - evaluated_before, pieces, cancelled)


def _evaluated(llama: KvSnapshotLlama) -> int:
    """Prompt tokens llama.cpp has evaluated in this context so far."""
    return int(llama_cpp.llama_perf_context(llama.ctx).n_p_eval)


def _completion_pieces(
    llama: KvSnapshotLlama, messages: Sequence[ChatMessage], options: GenerationOptions
) -> Generator[str, None, None]:
    """Non-empty text pieces of a streamed chat completion, formatted with the model's own chat template."""
    chunks = llama.create_chat_completion(
        messages=[{"role": m.role, "content": m.content} for m in messages],  # type: ignore[misc]
        stream=True,
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        stop=list(options.stop) or None,
        seed=options.seed,
        # A schema becomes a llama.cpp grammar: the model can only write JSON of that shape.
        response_format=None if options.json_schema is None else {"type": "json_object", "schema": options.json_schema},
    )
    if isinstance(chunks, dict):
        raise TypeError("llama-cpp-python returned a whole reply for a streamed request")
    try:
        for chunk in chunks:
            text = chunk["choices"][0]["delta"].get("content")
            if isinstance(text, str) and text:
                yield text
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
