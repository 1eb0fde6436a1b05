"""The advisor on real models: condensation on the packaged SmolLM2 (embedded, the default light model), and a whole
pass whose advisor is a real OpenAI-compatible server (`llama_cpp.server` serving the packaged model on 127.0.0.1),
its answer constrained to the schema by the server's grammar."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.advisor.condense import Condenser
from host.advisor.models import make_advisor_llm, model_id
from host.advisor.passes import AdvisorPasses
from host.advisor.shared_state import LocalState
from host.config import Settings
from host.profiles.schema import AdvisorModelSpec
from tests.advisor_support import conversation, services_for, settings_for, village_with_advisor
from tests.llama_server import API_KEY, LlamaServer


async def test_the_packaged_model_condenses_and_a_repeat_costs_nothing(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, village_with_advisor(tmp_path, ""))
    async with services_for(settings) as services:
        bram = services.registry.npcs("example")["bram"]
    spec = AdvisorModelSpec(backend="embedded", temperature=0.0, max_tokens=60)
    llm = make_advisor_llm(Settings(), spec)
    try:
        condenser = Condenser(llm, spec, model_id(spec), LocalState(), chunk_chars=3000, digest_chars=1200)
        digest = await condenser.digest(bram, conversation())
        assert digest is not None and digest.lines == 2
        assert len(digest.digest.split()) >= 3  # the model wrote something of its own
        again = await condenser.digest(bram, conversation())
        assert again == digest
        assert (condenser.usage.calls, condenser.usage.cache_hits) == (1, 1)
        assert await condenser.digest(bram, conversation()[2:]) is None  # Hilde's lines do not concern Bram
    finally:
        await llm.aclose()


# Two models on two shared cores: the embedded one condenses, the server's reads a ~1500-token prompt and writes JSON.
@pytest.mark.timeout(900)
async def test_a_pass_against_a_real_openai_compatible_server(
    tmp_path: Path, llama_server: LlamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = f"""
[advisor]
[advisor.model]
backend = "openai"
url = "{llama_server.base_url}"
model = "smollm2"
api_key_env = "NPC_HOST_TEST_ADVISOR_KEY"
structured_output = "json_object"
temperature = 0.0
max_tokens = 300

[advisor.condense]
backend = "embedded"
temperature = 0.0
max_tokens = 60
"""
    settings = settings_for(tmp_path, village_with_advisor(tmp_path, table))
    monkeypatch.setenv("NPC_HOST_TEST_ADVISOR_KEY", API_KEY)
    async with services_for(settings) as services:
        await services.transcripts.append("example", *conversation())
        passes = AdvisorPasses(services, LocalState())
        result = await passes.run("example")
        await passes.aclose()
        stored = await services.store.steering.list_recommendations("example")
    assert result.outcome == "ok", f"{result.reason}: {result.detail}"
    assert result.usage.lines == 4 and result.usage.tokens_out > 0
    # Whatever the tiny model advised was valid, stored, and only for the NPCs that spoke.
    assert [r.id for r in stored] == sorted((r.id for r in result.recommendations), reverse=True)
    assert all(r.npc in ("bram", "hilde") for r in stored)
