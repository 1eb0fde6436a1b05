"""`npc-host advisor ...` as a user runs it: two processes on one Redis never run a pass of the same server at once
(the lock) and share the digest cache; pending recommendations are listed, accepted and rejected."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis.asyncio as redis

from host.advisor.passes import AdvisorPasses
from host.advisor.shared_state import LocalState
from tests.advisor_support import (
    advice_json,
    conversation,
    ollama_advisor_table,
    services_for,
    settings_for,
    village_with_advisor,
)
from tests.doubles.ollama_server import OllamaWireServer
from tests.host_process import START_S, HostProcess, host_env, run_host


class HeldAdvisor(OllamaWireServer):
    """An advisor model that starts its answer only when the test releases it."""

    def __init__(self, replies: list[list[str]]) -> None:
        super().__init__(replies=replies, chunk_delay_s=0.01)
        self.release = asyncio.Event()

    async def pause(self, seconds: float) -> bool:
        await self.release.wait()
        return False


async def test_two_advisor_processes_on_one_redis_never_overlap(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    # The advisor model holds its answer until the second process has tried: the first holds the lock meanwhile.
    slow_answer = ["{", '"npcs"', ":", " []", "}"]
    async with (
        OllamaWireServer(replies=["Alice asked Bram for a room.", "Bob asked Hilde about the gate."]) as condense,
        HeldAdvisor([slow_answer]) as advisor,
    ):
        profiles = village_with_advisor(tmp_path, ollama_advisor_table(advisor.url, condense_url=condense.url))
        settings = settings_for(tmp_path, profiles)
        async with services_for(settings) as services:
            await services.transcripts.append("example", *conversation())
        env = host_env(tmp_path, NPC_HOST_REDIS_URL=redis_url, NPC_HOST_BUS__KEY_PREFIX=redis_prefix)

        first = HostProcess.start(["advisor", "run", "example"], env, tmp_path, name="first")
        try:
            deadline = time.monotonic() + START_S  # a bound for a loaded machine, not a timing assertion
            while not advisor.chat_bodies:
                assert first.process.poll() is None and time.monotonic() < deadline, first.output()
                await asyncio.sleep(0.1)
            second = await run_host(["advisor", "run", "example"], env, tmp_path)
            assert second.code == 3, second
            assert "already running in another process" in second.stderr
            advisor.release.set()
            assert await first.wait_exit() == 0, first.output()
        finally:
            first.stop_now()
        assert "4 new line(s)" in first.output()
        assert len(advisor.chat_bodies) == 1  # only the first process asked
        status = await run_host(["status"], env, tmp_path)
        assert status.code == 0, status
        rows = [line for line in status.stdout.splitlines() if "manual" in line]
        assert len(rows) == 1 and "example" in rows[0] and "ok" in rows[0]  # the pass, in `npc-host status`

        client = redis.Redis.from_url(redis_url)
        try:
            digests = [key async for key in client.scan_iter(match=f"{redis_prefix}npc-host:advisor:digest:*")]
            assert len(digests) == 2  # one per NPC, shared by every advisor process on this Redis
            assert [key async for key in client.scan_iter(match=f"{redis_prefix}npc-host:advisor:lock:*")] == []
        finally:
            await client.aclose()


async def test_pending_recommendations_are_listed_accepted_and_rejected(tmp_path: Path) -> None:
    replies = [
        "Alice asked Bram for a room.",
        "Bob asked Hilde about the gate.",
        advice_json(),
    ]
    async with OllamaWireServer(replies=replies) as models:
        profiles = village_with_advisor(tmp_path, ollama_advisor_table(models.url, approval=True))
        settings = settings_for(tmp_path, profiles)
        async with services_for(settings) as services:
            await services.transcripts.append("example", *conversation())
            passes = AdvisorPasses(services, LocalState())
            result = await passes.run("example")
            await passes.aclose()
        env = host_env(tmp_path)
        rec = result.recommendations[0].id

        listed = await run_host(["advisor", "list", "example", "--status", "pending"], env, tmp_path)
        assert listed.code == 0, listed
        assert f"#{rec} bram [pending, priority 4" in listed.stdout
        assert "steering (4, 30 min): Offer Alice the last room at half price." in listed.stdout

        accepted = await run_host(["advisor", "accept", str(rec), "--by", "kim"], env, tmp_path)
        assert accepted.code == 0 and f"#{rec} bram [active" in accepted.stdout
        again = await run_host(["advisor", "reject", str(rec)], env, tmp_path)
        assert again.code == 1 and "already active" in again.stderr
        missing = await run_host(["advisor", "accept", "999"], env, tmp_path)
        assert missing.code == 1 and "no recommendation 999" in missing.stderr

        passes_table = await run_host(["advisor", "passes", "example"], env, tmp_path)
        assert passes_table.code == 0 and "manual" in passes_table.stdout and "ok" in passes_table.stdout
