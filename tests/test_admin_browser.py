"""The operator's page in real headless Chromium (Debian's package, driven by Playwright; no browser download),
against a running `npc-host run --roles brain,admin`. The screenshots the README shows are taken here."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.admin_support import PASSWORDS, SERVER, AdminHost, admin_host
from tests.chromium import chromium_path
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.asyncio(loop_scope="module")
__all__ = ["admin_host"]

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def _page(browser: Browser, host: AdminHost) -> Page:
    context = await browser.new_context(base_url=host.url, viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    await page.goto("/")
    return page


async def _sign_in(browser: Browser, host: AdminHost, name: str) -> Page:
    page = await _page(browser, host)
    await page.fill("#sign-in-name", name)
    await page.fill("#sign-in-password", PASSWORDS[name])
    await page.click("#sign-in button[type=submit]")
    await expect(page.locator("#who")).to_have_text(f"{name} ({_role(name)})")
    await expect(page.locator("#live-state")).to_have_text("live", timeout=30_000)
    return page


def _role(name: str) -> str:
    return {"ada": "admin", "otto": "operator", "vic": "viewer"}[name]


def _npc(page: Page, npc: str) -> object:
    return page.locator(f'.npc[data-npc="{npc}"]')


async def _shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


async def test_a_new_transcript_line_shows_within_two_seconds(browser: Browser, admin_host: AdminHost) -> None:
    page = await _sign_in(browser, admin_host, "otto")
    await admin_host.say("bram", "Bram, what is the stew today?")
    published = time.monotonic()
    line = page.locator("#transcript li", has_text="what is the stew today?")
    await expect(line).to_be_visible(timeout=2_000)
    assert time.monotonic() - published < 2.0
    answer = page.locator("#transcript li.line-npc", has_text="stew is hot")
    await expect(answer.first).to_be_visible(timeout=60_000)
    await expect(page.locator('.npc[data-npc="bram"] .last')).to_contain_text("stew is hot", timeout=10_000)
    await _shoot(page, "live")
    await page.context.close()


async def test_pausing_an_npc_on_the_page_stops_its_answers(browser: Browser, admin_host: AdminHost) -> None:
    page = await _sign_in(browser, admin_host, "otto")
    bram = page.locator('.npc[data-npc="bram"]')
    await bram.get_by_role("button", name="Pause").click()
    await expect(bram.locator('[data-state="paused"]')).to_be_visible(timeout=30_000)
    await admin_host.say("bram", "Hello? Bram?")
    await admin_host.say("birch", "Birch, is Bram asleep?")
    # The lines are handled in order: once birch answered the second, bram had its chance at the first.
    birch_answer = page.locator("#transcript li.line-npc", has_text="stew is hot").filter(has_text="birch")
    await expect(birch_answer.last).to_be_visible(timeout=60_000)
    texts = await page.locator("#transcript li").all_inner_texts()
    asked = max(i for i, text in enumerate(texts) if "Hello? Bram?" in text)
    assert not [text for text in texts[asked:] if text.split(" ", 2)[1:2] == ["npc"] and "bram >" in text]
    await _shoot(page, "paused")
    await bram.get_by_role("button", name="Resume").click()
    await expect(bram.locator('[data-state="paused"]')).to_have_count(0, timeout=30_000)
    await page.context.close()


async def test_a_note_added_on_the_page_reaches_the_next_prompt(browser: Browser, admin_host: AdminHost) -> None:
    page = await _sign_in(browser, admin_host, "otto")
    birch = page.locator('.npc[data-npc="birch"]')
    await birch.locator('input[placeholder^="note for"]').fill("The miller's cat is missing.")
    await birch.get_by_role("button", name="Add note").click()
    await expect(page.locator("#transcript li.line-note", has_text="miller's cat")).to_be_visible(timeout=10_000)
    store = await admin_host.open_store()
    try:

        async def stored() -> bool:
            return any("miller's cat" in note.text for note in await store.steering.list_notes(SERVER, "birch"))

        await admin_host.wait_for(stored, "the note in birch's memory")
    finally:
        await store.close()
    asked = len(admin_host.llm.chat_bodies)
    await admin_host.say("birch", "Any news in the village?")
    await admin_host.wait_for(lambda: len(admin_host.llm.chat_bodies) > asked, "birch's next prompt")
    assert "The miller's cat is missing." in json.dumps(admin_host.llm.chat_bodies[asked])
    await page.context.close()


async def test_a_profile_edit_with_a_mistake_shows_the_error_next_to_the_field(
    browser: Browser, admin_host: AdminHost
) -> None:
    page = await _sign_in(browser, admin_host, "ada")
    file = admin_host.workdir / "profiles" / SERVER / "hilde.toml"
    before = file.read_text()
    await page.click('nav button[data-tab="profiles"]')
    await page.click(f'a[data-file="{SERVER}/hilde.toml"]')
    field = page.locator('[data-field="world.hearing_range"]')
    await field.fill("-3")
    await page.get_by_role("button", name="Save").click()
    error = page.locator('[data-error-for="world.hearing_range"]')
    await expect(error).to_be_visible(timeout=10_000)
    await expect(error).to_contain_text("greater than 0")
    # Next to its field, not in a list somewhere else.
    assert await field.evaluate("node => node.nextElementSibling.dataset.errorFor") == "world.hearing_range"
    await expect(field).to_have_class("invalid")
    assert file.read_text() == before
    await error.evaluate("node => node.scrollIntoView({block: 'center'})")
    await _shoot(page, "profile-error")
    await field.fill("12")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".status")).to_have_text("saved", timeout=10_000)
    assert "hearing_range = 12" in file.read_text()
    await page.click('nav button[data-tab="charts"]')
    await expect(page.locator('[data-chart="turns"] .uplot')).to_be_visible(timeout=20_000)
    # Turns between two readings of /metrics draw the latency charts.
    for question in ("How old are you?", "What do you see?", "Is it raining?"):
        await admin_host.say("birch", question)
        await page.wait_for_timeout(2_000)
    await expect(page.locator('[data-chart="latency-stage"] .uplot')).to_be_visible(timeout=30_000)
    await expect(page.locator('[data-chart="latency-npc"] .uplot')).to_be_visible(timeout=30_000)
    await page.wait_for_timeout(6_000)  # one more reading, so each line has points to join
    await _shoot(page, "charts")
    await page.context.close()


async def test_a_viewer_cannot_steer(browser: Browser, admin_host: AdminHost) -> None:
    page = await _sign_in(browser, admin_host, "vic")
    await page.locator('.npc[data-npc="hilde"]').get_by_role("button", name="Pause").click()
    await expect(page.locator("#notice")).to_contain_text("needs the operator role")
    await expect(page.locator('.npc[data-npc="hilde"] [data-state="paused"]')).to_have_count(0)
    await page.context.close()


async def test_a_wrong_password_is_refused_and_then_rate_limited(browser: Browser, admin_host: AdminHost) -> None:
    page = await _page(browser, admin_host)
    error = page.locator("#sign-in-error")
    for attempt in range(5):
        await page.fill("#sign-in-name", "mallory")
        await page.fill("#sign-in-password", f"guess {attempt}")
        await page.click("#sign-in button[type=submit]")
        await expect(error).to_have_text("wrong name or password")
        await page.evaluate("document.getElementById('sign-in-error').textContent = ''")
    await page.fill("#sign-in-password", "guess 6")
    await page.click("#sign-in button[type=submit]")
    await expect(error).to_contain_text("too many failed sign-ins")
    await expect(page.locator("#app")).to_be_hidden()
    await _shoot(page, "sign-in-limited")
    await page.context.close()


async def test_a_line_tried_in_the_profile_editor_is_answered_by_the_unsaved_draft(
    browser: Browser, admin_host: AdminHost
) -> None:
    page = await _sign_in(browser, admin_host, "ada")
    file = admin_host.workdir / "profiles" / SERVER / "hilde.toml"
    before = file.read_text()
    await page.click('nav button[data-tab="profiles"]')
    await page.click(f'a[data-file="{SERVER}/hilde.toml"]')
    asked = len(admin_host.llm.chat_bodies)
    await page.locator('[data-field="persona.description"]').fill("Hilde is a retired pirate who sells smoked fish.")
    await page.get_by_label("line to try").fill("What do you sell?")
    await page.get_by_role("button", name="Try line").click()
    reply = page.locator(".trial-reply")
    await expect(reply).to_contain_text("hilde: Aye, friend", timeout=60_000)
    assert "retired pirate" in json.dumps(admin_host.llm.chat_bodies[asked])
    assert file.read_text() == before  # tried, not saved
    await reply.evaluate("node => node.scrollIntoView({block: 'center'})")
    await _shoot(page, "profile-try")
    await page.context.close()


async def test_a_table_server_links_to_its_map_for_operators_only(browser: Browser, admin_host: AdminHost) -> None:
    tavern = admin_host.workdir / "profiles" / "tavern"
    tavern.mkdir()
    (tavern / "server.toml").write_text(
        'name = "tavern"\ngame = "table"\n\n[voice_page]\npublic_url = "https://npc.example.org/voice/"\n'
    )
    try:
        page = await _sign_in(browser, admin_host, "otto")
        link = page.locator('.server[data-server="tavern"] a.table-map')
        await expect(link).to_have_attribute("href", "/table/tavern", timeout=30_000)  # hot reload, then a refresh
        await expect(page.locator('.server[data-server="example"] a.table-map')).to_have_count(0)
        async with page.context.expect_page() as opened:
            await link.click()
        map_page = await opened.value
        await expect(map_page.locator("#map")).to_be_visible()
        await page.context.close()
        viewer = await _sign_in(browser, admin_host, "vic")
        await expect(viewer.locator('.server[data-server="tavern"]')).to_be_visible(timeout=30_000)
        await expect(viewer.locator("a.table-map")).to_have_count(0)
        await viewer.context.close()
    finally:
        shutil.rmtree(tavern)


async def test_an_admin_sets_a_bridge_token_that_is_shown_once(browser: Browser, admin_host: AdminHost) -> None:
    page = await _sign_in(browser, admin_host, "ada")
    page.on("dialog", lambda dialog: dialog.accept())  # "Replace the bridge token?"
    await page.get_by_role("button", name="Profiles").click()
    row = page.locator(f'#bridge-tokens .token[data-server="{SERVER}"]')
    await row.get_by_role("button", name=re.compile("^(Set|Rotate) token$")).click()
    shown = row.locator(".new-token")
    await expect(shown).to_be_visible(timeout=10_000)
    token = await shown.inner_text()
    await expect(row.locator(".token-state")).to_contain_text("token set by ada")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.locator("#bridge-tokens").screenshot(path=str(SCREENSHOTS / "bridge-token.png"))
    await page.reload()
    await page.get_by_role("button", name="Profiles").click()
    await expect(page.locator(f'#bridge-tokens .token[data-server="{SERVER}"] .token-state')).to_contain_text("ada")
    assert token not in await page.content()
    store = await admin_host.open_store()
    try:
        stored = await store.bridge_tokens.standing(SERVER)
        assert stored is not None and stored.matches(token)
    finally:
        await store.close()
    await page.context.close()
    viewer = await _sign_in(browser, admin_host, "vic")
    await viewer.get_by_role("button", name="Profiles").click()
    await expect(viewer.locator("#profile-list h3").first).to_be_visible(timeout=10_000)
    await expect(viewer.locator("#bridge-tokens")).to_be_hidden()
    await viewer.context.close()


async def test_the_transcript_filtered_by_npc_shows_the_lines_to_it(browser: Browser, admin_host: AdminHost) -> None:
    page = await _sign_in(browser, admin_host, "vic")
    # Unfiltered: a player's line shows at once, then once its answer starts it shows addressed, in the same place.
    await admin_host.say("birch", "Birch, where is the mill?")
    asked = page.locator("#transcript li", has_text="Birch, where is the mill?")
    await expect(asked).to_contain_text("Kai > birch", timeout=60_000)
    await expect(asked).to_have_count(1)
    # The brain writes a line and its answer to the file together: both are in the history from here on.
    on_file = "Birch, where is the mill?"
    await admin_host.wait_for(lambda: on_file in admin_host.transcript_text(), "the exchange on file")
    # Filtered by NPC: the lines to birch and birch's own, nothing of bram's conversation.
    await page.fill("#filter-npc", "birch")
    await page.locator("#filter-npc").blur()  # "change": the history reloads and the live socket reconnects
    await expect(page.locator("#transcript li", has_text="Birch, where is the mill?")).to_have_count(1, timeout=30_000)
    await expect(page.locator("#live-state")).to_have_text("live", timeout=30_000)
    await admin_host.say("bram", "Bram, is the well deep?")
    await admin_host.say("birch", "Birch, is the well deep?")
    asked = page.locator("#transcript li", has_text="Birch, is the well deep?")
    await expect(asked).to_contain_text("Kai > birch", timeout=60_000)
    # The conversation, in order: Kai's line to birch, then birch's answer; bram's exchange in between is not shown.
    await expect(page.locator("#transcript li:last-child")).to_contain_text("npc birch > Kai", timeout=60_000)
    await expect(page.locator("#transcript li:nth-last-child(2)")).to_contain_text("Birch, is the well deep?")
    await expect(page.locator("#transcript li", has_text="Bram, is the well deep?")).to_have_count(0)
    await page.context.close()
