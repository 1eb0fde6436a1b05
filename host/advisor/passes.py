"""One advisor pass over a server: read the transcript since the cursor, condense per NPC, advise, feed back.

Passes of one server never overlap (the shared pass lock, across processes when the hub is Redis). Every pass is
recorded with its trigger, usage and outcome; a pass that fails or crashes midway leaves the cursor where it was, so
the next pass reads the same lines (recommendations already stored by the failed one are not stored twice).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from host import metrics
from host.advisor.advise import AdviseUsage, InvalidAnswerError, NpcBrief, advise
from host.advisor.condense import Condenser, CondenseUsage, NpcDigest
from host.advisor.feedback import feed_back
from host.advisor.models import make_advisor_llm, model_id
from host.advisor.pass_summary import PassSummary
from host.advisor.reading import counts_for_advice, read_new_lines
from host.advisor.shared_state import SharedState
from host.errors import ConfigError, NpcHostError
from host.llm.base import LLM, LLMError
from host.profiles.schema import AdvisorModelSpec, AdvisorSpec
from host.roles.services import HostServices
from host.store import AdvisorCursor, PassUsage, Recommendation
from host.transcript.lines import TranscriptLine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PassResult:
    pass_id: int
    outcome: str
    reason: str | None = None
    detail: str | None = None
    usage: PassUsage = field(default_factory=PassUsage)
    recommendations: list[Recommendation] = field(default_factory=list)


class _PassFailedError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class AdvisorPasses:
    """Runs passes; keeps one condensing and one advising backend per distinct model setting, closed by `aclose`."""

    def __init__(self, services: HostServices, state: SharedState) -> None:
        self._settings = services.settings
        self._store = services.store
        self._bus = services.bus
        self._registry = services.registry
        self._transcripts = services.transcripts
        self._state = state
        self._llms: dict[str, LLM] = {}

    def spec(self, server: str) -> AdvisorSpec:
        spec = self._registry.server(server).advisor
        if spec is None:
            raise ConfigError(f"server '{server}' has no [advisor] table in its server profile (docs/advisor.md)")
        return spec

    async def run(self, server: str, trigger: str = "manual") -> PassResult:
        """One pass now. Raises PassBusyError when another pass of `server` is running."""
        spec = self.spec(server)
        lease_s = spec.model.timeout_s + spec.condense.timeout_s
        async with self._state.pass_lock(server, lease_s):
            started = time.perf_counter()
            result = await self._locked_pass(server, spec, trigger)
        await self._state.remember_pass(
            PassSummary(
                pass_id=result.pass_id,
                server=server,
                trigger=trigger,
                outcome=result.outcome,
                reason=result.reason,
                **result.usage.model_dump(),
                seconds=time.perf_counter() - started,
            )
        )
        return result

    async def _locked_pass(self, server: str, spec: AdvisorSpec, trigger: str) -> PassResult:
        pass_id = await self._store.advisor.start_pass(server, trigger)
        started = time.perf_counter()
        tally = _Tally()
        try:
            cursor, recommendations = await self._work(server, spec, pass_id, tally)
        except asyncio.CancelledError:
            await asyncio.shield(self._fail(server, pass_id, tally, "cancelled", "the host stopped during the pass"))
            raise
        except _PassFailedError as exc:
            return await self._fail(server, pass_id, tally, exc.reason, exc.detail)
        except NpcHostError as exc:  # a setting to fix (an API key variable not set), a store that went away
            return await self._fail(server, pass_id, tally, exc.code, exc.message)
        except Exception as exc:
            log.exception("advisor pass %d of '%s' crashed; the cursor stays", pass_id, server)
            return await self._fail(server, pass_id, tally, "crashed", f"{type(exc).__name__}: {exc}")
        finally:
            metrics.ADVISOR_PASS_SECONDS.labels(server=server).observe(time.perf_counter() - started)
        usage = tally.usage(len(recommendations))
        await self._store.advisor.finish_pass(pass_id, usage, cursor=cursor)
        _count(server, "ok", None, tally)
        metrics.ADVISOR_RECOMMENDATIONS.labels(server=server).inc(len(recommendations))
        log.info(
            "advisor pass %d of '%s': %d lines, %d recommendation(s), %d tokens in, %d out, %d cached digest(s)",
            *(pass_id, server, usage.lines, usage.recommendations, usage.tokens_in, usage.tokens_out, usage.cache_hits),
        )
        return PassResult(pass_id, "ok", usage=usage, recommendations=recommendations)

    async def _fail(self, server: str, pass_id: int, tally: _Tally, reason: str, detail: str) -> PassResult:
        usage = tally.usage(0)
        log.warning("advisor pass %d of '%s' failed (%s): %s", pass_id, server, reason, detail)
        await self._store.advisor.finish_pass(pass_id, usage, reason=reason, detail=detail)
        _count(server, "failed", reason, tally)
        return PassResult(pass_id, "failed", reason, detail, usage)

    async def _work(
        self, server: str, spec: AdvisorSpec, pass_id: int, tally: _Tally
    ) -> tuple[AdvisorCursor, list[Recommendation]]:
        cursor = await self._store.advisor.cursor(server)
        new = await read_new_lines(self._settings.transcripts_dir, server, cursor, spec.max_bytes_per_pass)
        lines = [line for line in new.lines if counts_for_advice(line)]
        tally.lines = len(lines)
        if not lines:
            return new.cursor, []
        digests = await self._condense(server, spec, lines, tally)
        if not digests:
            return new.cursor, []
        npcs = self._registry.npcs(server)
        briefs = [
            NpcBrief(npcs[digest.npc], digest, await self._store.steering.active_advice(server, digest.npc))
            for digest in digests
        ]
        try:
            answer = await advise(self._llm(spec.model), spec.model, server, briefs, tally.advise)
        except LLMError as exc:
            raise _PassFailedError("endpoint_failed", exc.message) from exc
        except InvalidAnswerError as exc:
            raise _PassFailedError("invalid_output", str(exc)) from exc
        pass_key = (
            f"{cursor.day if cursor else ''}:{cursor.offset if cursor else 0}-{new.cursor.day}:{new.cursor.offset}"
        )
        stored = [
            await feed_back(
                self._store,
                self._bus,
                self._transcripts,
                server,
                advice,
                pass_key=pass_key,
                pass_id=pass_id,
                approval=spec.approval,
            )
            for advice in answer.npcs
            if not advice.is_empty()
        ]
        return new.cursor, stored

    async def _condense(
        self, server: str, spec: AdvisorSpec, lines: list[TranscriptLine], tally: _Tally
    ) -> list[NpcDigest]:
        condenser = Condenser(
            self._llm(spec.condense),
            spec.condense,
            model_id(spec.condense),
            self._state,
            spec.chunk_chars,
            spec.digest_chars,
            tally.condense,
        )
        digests: list[NpcDigest] = []
        try:
            for npc in self._registry.npcs(server).values():
                digest = await condenser.digest(npc, lines)
                if digest is not None and digest.digest:
                    digests.append(digest)
        except LLMError as exc:
            raise _PassFailedError("condense_failed", exc.message) from exc
        return digests

    def _llm(self, spec: AdvisorModelSpec) -> LLM:
        key = model_id(spec) + f"|{spec.structured_output}|{spec.api_key_env}"
        if key not in self._llms:
            self._llms[key] = make_advisor_llm(self._settings, spec)
        return self._llms[key]

    async def aclose(self) -> None:
        llms, self._llms = list(self._llms.values()), {}
        await asyncio.gather(*(llm.aclose() for llm in llms))


@dataclass
class _Tally:
    """What a pass spent so far; kept outside the steps so a failed pass still reports it."""

    lines: int = 0
    condense: CondenseUsage = field(default_factory=CondenseUsage)
    advise: AdviseUsage = field(default_factory=AdviseUsage)

    def usage(self, recommendations: int) -> PassUsage:
        return PassUsage(
            lines=self.lines,
            tokens_in=self.condense.tokens_in + self.advise.tokens_in,
            tokens_out=self.condense.tokens_out + self.advise.tokens_out,
            cache_hits=self.condense.cache_hits,
            recommendations=recommendations,
        )

    def stage_tokens(self) -> dict[tuple[str, str], int]:
        return {
            ("condense", "in"): self.condense.tokens_in,
            ("condense", "out"): self.condense.tokens_out,
            ("advise", "in"): self.advise.tokens_in,
            ("advise", "out"): self.advise.tokens_out,
        }


def _count(server: str, outcome: str, reason: str | None, tally: _Tally) -> None:
    metrics.ADVISOR_PASSES.labels(server=server, outcome=outcome).inc()
    if reason is not None:
        metrics.ADVISOR_FAILURES.labels(server=server, reason=reason).inc()
    for (stage, direction), tokens in tally.stage_tokens().items():
        metrics.ADVISOR_TOKENS.labels(server=server, stage=stage, direction=direction).inc(tokens)
    metrics.ADVISOR_CACHE_HITS.labels(server=server).inc(tally.condense.cache_hits)
