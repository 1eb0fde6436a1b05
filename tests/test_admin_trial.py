"""Trying a line against an unsaved profile edit: over HTTP against a running `npc-host run --roles brain,admin`
(the brain answers through the hub and records nothing), and the admin's desk with no brain on the hub."""

from __future__ import annotations

import asyncio
import json

import pytest

from host.admin.trials import NoBrainAnsweredError, TrialDesk
from host.bus import MemoryBus
from host.config import BusSettings
from host.profiles.loader import load_server
from host.store import ConversationKey
from tests.admin_support import SERVER, AdminHost, admin_host, signed_in
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["admin_host"]

PATH = f"/api/profiles/{SERVER}/hilde.toml/try"
DRAFT = "Hilde is a retired pirate who now sells smoked fish at the harbour."


async def test_a_line_is_answered_by_the_unsaved_draft_and_nothing_is_recorded(admin_host: AdminHost) -> None:
    file = admin_host.workdir / "profiles" / SERVER / "hilde.toml"
    before = file.read_text()
    store = await admin_host.open_store()
    try:
        turns_before = await store.conversations.turn_counts(SERVER)
        asked = len(admin_host.llm.chat_bodies)
        async with signed_in(admin_host, "ada") as (client, csrf):
            answer = await client.post(
                PATH,
                json={"values": {"persona.description": DRAFT}, "line": "What do you sell, captain?"},
                headers={"X-CSRF-Token": csrf},
                timeout=90.0,
            )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["npc"] == "hilde"
        assert body["reply"].startswith("Aye, friend, the stew is hot")
        assert body["error"] is None
        # The model was asked as the draft describes Hilde; the file on disk still holds the saved one.
        prompt = json.dumps(admin_host.llm.chat_bodies[asked])
        assert "retired pirate" in prompt and "What do you sell, captain?" in prompt
        assert file.read_text() == before
        await asyncio.sleep(0.5)  # anything the trial wrongly recorded would be written by now
        assert await store.conversations.turn_counts(SERVER) == turns_before
        key = ConversationKey(server=SERVER, npc="hilde", player="Traveler")
        assert await store.conversations.recent_exchanges(key) == []
    finally:
        await store.close()
    assert "What do you sell, captain?" not in admin_host.transcript_text()


async def test_a_draft_with_a_mistake_is_refused_by_field_and_no_model_is_asked(admin_host: AdminHost) -> None:
    asked = len(admin_host.llm.chat_bodies)
    async with signed_in(admin_host, "ada") as (client, csrf):
        bad = await client.post(
            PATH, json={"values": {"world.hearing_range": "-3"}, "line": "Hello?"}, headers={"X-CSRF-Token": csrf}
        )
    assert bad.status_code == 422
    assert [p["field"] for p in bad.json()["detail"]["problems"]] == ["world.hearing_range"]
    assert len(admin_host.llm.chat_bodies) == asked


async def test_only_admins_try_lines_and_the_line_is_capped(admin_host: AdminHost) -> None:
    async with signed_in(admin_host, "otto") as (client, csrf):
        refused = await client.post(PATH, json={"values": {}, "line": "Hello?"}, headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403
    async with signed_in(admin_host, "ada") as (client, csrf):
        long = await client.post(PATH, json={"values": {}, "line": "x" * 1001}, headers={"X-CSRF-Token": csrf})
    assert long.status_code == 422


async def test_with_no_brain_on_the_hub_the_desk_gives_up_with_a_clear_error() -> None:
    bus = MemoryBus(BusSettings())
    desk = TrialDesk(bus, [SERVER], wait_s=0.5)
    hilde = load_server(REPO_ROOT / "npc_profiles" / "example").npcs["hilde"]
    stop = asyncio.Event()
    running = asyncio.create_task(desk.run(stop))
    try:
        with pytest.raises(NoBrainAnsweredError, match=r"within 0\.5 s: is a process with the brain role running\?"):
            await desk.try_line(SERVER, hilde, "Traveler", "Hello?", "ada")
    finally:
        stop.set()
        await running
        await bus.aclose()
