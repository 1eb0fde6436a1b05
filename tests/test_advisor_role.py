"""The advisor role's schedule: a pass starts once `after_lines` new lines were written, long before the interval,
and the advisor's own lines never count towards the next one. Passes of one server never overlap in a process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from host.advisor.passes import AdvisorPasses
from host.advisor.role import AdvisorRole
from host.advisor.shared_state import LocalState, PassBusyError
from tests.advisor_support import (
    advice_json,
    conversation,
    ollama_advisor_table,
    services_for,
    settings_for,
    village_with_advisor,
)
from tests.bus_support import poll_until, wait_until
from tests.doubles.ollama_server import OllamaWireServer


async def test_enough_new_lines_start_a_pass_before_the_interval(tmp_path: Path) -> None:
    replies = ["Alice asked Bram for a room.", "Bob asked Hilde about the gate.", advice_json()]
    async with OllamaWireServer(replies=replies) as models:
        # every_minutes = 60 in the table: only the line count can start a pass within this test.
        settings = settings_for(tmp_path, village_with_advisor(tmp_path, ollama_advisor_table(models.url)))
        async with services_for(settings) as services:
            role = AdvisorRole(services, line_check_interval_s=0.2)
            stop = asyncio.Event()
            running = asyncio.create_task(role.run(stop))
            try:
                await services.transcripts.append("example", *conversation()[:3])  # 3 lines: below after_lines
                await asyncio.sleep(1.0)  # several line checks pass without a pass
                assert await services.store.advisor.recent_passes("example") == []
                await services.transcripts.append("example", conversation()[3])

                async def passed() -> bool:
                    return [p.outcome for p in await services.store.advisor.recent_passes("example")] == ["ok"]

                await poll_until(passed, "a pass started by the line count")
                await asyncio.sleep(1.0)  # the pass wrote an advisor line: it must not start another
                recent = await services.store.advisor.recent_passes("example")
                assert [(p.trigger, p.outcome) for p in recent] == [("lines", "ok")]
                assert len(await services.store.steering.list_recommendations("example")) == 1
            finally:
                stop.set()
                await running


async def test_a_second_pass_of_the_same_server_in_one_process_is_refused(tmp_path: Path) -> None:
    held = asyncio.Event()

    class Held(OllamaWireServer):
        async def pause(self, seconds: float) -> bool:
            await held.wait()
            return False

    async with Held(replies=["Digest one.", "Digest two.", advice_json()], chunk_delay_s=0.01) as models:
        settings = settings_for(tmp_path, village_with_advisor(tmp_path, ollama_advisor_table(models.url)))
        async with services_for(settings) as services:
            await services.transcripts.append("example", *conversation())
            passes = AdvisorPasses(services, LocalState())
            first = asyncio.create_task(passes.run("example"))
            await wait_until(lambda: bool(models.chat_bodies), "the first pass calling a model")
            with pytest.raises(PassBusyError, match="already running in this process"):
                await passes.run("example")
            held.set()
            assert (await first).outcome == "ok"
            await passes.aclose()


async def test_the_redis_lock_outlives_its_lease_while_held_then_is_freed(redis_url: str, redis_prefix: str) -> None:
    from host.advisor.shared_state import RedisState

    holder, other = RedisState(redis_url, redis_prefix), RedisState(redis_url, redis_prefix)
    try:
        async with holder.pass_lock("example", lease_s=1.0):
            await asyncio.sleep(2.5)  # past the 1 s lease: renewed meanwhile
            with pytest.raises(PassBusyError, match="another process"):
                async with other.pass_lock("example", lease_s=1.0):
                    pass
        async with other.pass_lock("example", lease_s=1.0):  # released by its holder on the way out
            pass
    finally:
        await holder.aclose()
        await other.aclose()
