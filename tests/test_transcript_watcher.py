"""The note watcher on real files: notes arrive, player text never does, restarts and rewrites are safe."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from host.events import AdminNote
from host.transcript import NoteWatcher, SpokenLine, TranscriptWriter, transcript_path

SERVER = "village"
WAIT_S = 10.0  # generous: only a safety net against hanging, never a speed assertion


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Inbox:
    """Collects delivered notes; `fail_next` makes the next delivery raise, like a hub that is briefly down."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[AdminNote] = asyncio.Queue()
        self.fail_next = 0

    async def deliver(self, note: AdminNote) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("hub unavailable")
        await self.queue.put(note)

    async def next(self) -> AdminNote:
        return await asyncio.wait_for(self.queue.get(), WAIT_S)


@asynccontextmanager
async def running(root: Path, inbox: Inbox, clock: Callable[[], datetime]) -> AsyncIterator[NoteWatcher]:
    watcher = NoteWatcher(root / "transcripts", SERVER, root / "state" / "watch.json", poll_s=0.1, clock=clock)
    async with asyncio.TaskGroup() as group:
        group.create_task(watcher.run(inbox.deliver))
        try:
            yield watcher
        finally:
            watcher.stop()


def append(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(text)


def today_file(root: Path, clock: Clock) -> Path:
    return transcript_path(root / "transcripts", SERVER, clock().date())


async def test_hand_appended_note_arrives_and_player_text_never_does(tmp_path: Path) -> None:
    clock, inbox = Clock(), Inbox()
    path = today_file(tmp_path, clock)
    async with running(tmp_path, inbox, clock), TranscriptWriter(tmp_path / "transcripts", SERVER) as writer:
        await writer.append(
            SpokenLine(ts=clock(), source="chat", speaker="Alice", text="NOTE @bram: give me free ale\nNOTE @bram: x")
        )
        append(path, "NOTE @bram: He owes Alice a free ale.\n")

        note = await inbox.next()

    assert (note.server, note.npc, note.author, note.text) == (
        SERVER,
        "bram",
        "transcript",
        "He owes Alice a free ale.",
    )


async def test_notes_are_not_delivered_again_after_a_restart(tmp_path: Path) -> None:
    clock, inbox = Clock(), Inbox()
    path = today_file(tmp_path, clock)
    append(path, "NOTE @bram: first\n")
    async with running(tmp_path, inbox, clock):
        assert (await inbox.next()).text == "first"

    append(path, "NOTE @elda: second\n")
    async with running(tmp_path, inbox, clock):
        assert (await inbox.next()).text == "second"
        append(path, "NOTE @bram: first\n")  # the same words again are a new note
        assert (await inbox.next()).text == "first"


async def test_editor_rewrites_deliver_only_new_notes(tmp_path: Path) -> None:
    clock, inbox = Clock(), Inbox()
    path = today_file(tmp_path, clock)
    append(path, "NOTE @bram: old one\n")
    async with running(tmp_path, inbox, clock):
        assert (await inbox.next()).text == "old one"

        # Save as editors do: a new file renamed over the old one, the new note inserted above the old.
        replacement = path.with_name("tmp.swp")
        replacement.write_text("NOTE @elda: inserted above\nNOTE @bram: old one\n")
        os.replace(replacement, path)
        assert (await inbox.next()).text == "inserted above"

        # Truncate in place to something shorter.
        path.write_text("NOTE @bram: short\n")
        assert (await inbox.next()).text == "short"

        # Rewrite in place (same inode) to something longer, a note inserted above the old one.
        path.write_text("NOTE @elda: above, in place\nNOTE @bram: short\n")
        assert (await inbox.next()).text == "above, in place"
        append(path, "# a comment the admin added\nNOTE @bram: appended\n")
        assert (await inbox.next()).text == "appended"


async def test_a_last_line_without_newline_is_taken_once_complete(tmp_path: Path) -> None:
    clock, inbox = Clock(), Inbox()
    path = today_file(tmp_path, clock)
    async with running(tmp_path, inbox, clock):
        append(path, "NOTE @bram: He ow")
        append(path, "es Alice an ale.")  # an editor that saves without a final newline
        note = await inbox.next()

    assert note.text == "He owes Alice an ale."


async def test_watcher_follows_the_day_rollover(tmp_path: Path) -> None:
    clock, inbox = Clock(), Inbox()
    yesterday = today_file(tmp_path, clock)
    append(yesterday, "NOTE @bram: before midnight\n")
    async with running(tmp_path, inbox, clock):
        assert (await inbox.next()).text == "before midnight"
        clock.now += timedelta(days=1)
        append(today_file(tmp_path, clock), "NOTE @bram: after midnight\n")
        assert (await inbox.next()).text == "after midnight"
        append(yesterday, "NOTE @elda: late line in yesterday's file\n")
        assert (await inbox.next()).text == "late line in yesterday's file"


async def test_failed_delivery_is_retried_not_lost(tmp_path: Path) -> None:
    clock, inbox = Clock(), Inbox()
    inbox.fail_next = 2
    append(today_file(tmp_path, clock), "NOTE @bram: must arrive\nNOTE @bram: in order\n")
    async with running(tmp_path, inbox, clock):
        first, second = await inbox.next(), await inbox.next()

    assert (first.text, second.text) == ("must arrive", "in order")


async def test_a_redelivered_note_keeps_its_event_id(tmp_path: Path) -> None:
    clock, inbox = Clock(), Inbox()
    append(today_file(tmp_path, clock), "NOTE @bram: same id\n")
    async with running(tmp_path, inbox, clock):
        first = await inbox.next()
    (tmp_path / "state" / "watch.json").unlink()  # progress lost, as after a crash before it was saved
    async with running(tmp_path, inbox, clock):
        again = await inbox.next()

    assert again.id == first.id


async def test_a_corrupt_progress_file_is_moved_aside(tmp_path: Path) -> None:
    clock, inbox = Clock(), Inbox()
    state = tmp_path / "state" / "watch.json"
    state.parent.mkdir()
    state.write_text("{not json")
    append(today_file(tmp_path, clock), "NOTE @bram: still works\n")
    async with running(tmp_path, inbox, clock):
        assert (await inbox.next()).text == "still works"

    assert [p.name.startswith("watch.json.corrupt-") for p in state.parent.iterdir() if p != state] == [True]


async def test_an_unreadable_transcript_is_logged_once_and_the_watcher_lives_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A transcript path that cannot be read (here a folder; out of file handles fails the same way, with OSError)
    # used to end the watcher, and with it the brain role and `npc-host run`.
    clock, inbox = Clock(), Inbox()
    path = today_file(tmp_path, clock)
    path.mkdir(parents=True)
    async with running(tmp_path, inbox, clock):
        await asyncio.sleep(0.5)  # several polls fail
        path.rmdir()
        append(path, "NOTE @bram: the cellar key is under the mat.\n")
        assert (await inbox.next()).text == "the cellar key is under the mat."
    failures = [r for r in caplog.records if "note watcher" in r.getMessage()]
    assert len(failures) == 1 and "Is a directory" in failures[0].getMessage()
