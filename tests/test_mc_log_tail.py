"""Chat capture: every server flavour's log format, and tailing across partial lines, rotation and truncation."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from integrations.minecraft.log_formats import ChatLine, PlayerJoined, PlayerLeft, parse_log_line
from integrations.minecraft.log_tail import LogTail

FIXTURES = Path(__file__).parent / "fixtures" / "minecraft_logs"

# Every fixture records the same session; only these lines are events (WARN lines, /say, /me and server notices
# are not, and a chat message quoting a join line stays chat).
EXPECTED = [
    PlayerJoined(time="12:00:00", player="Alice"),
    ChatLine(time="12:00:01", player="Alice", text="hello Bram, got any ale?"),
    ChatLine(time="12:00:03", player="Alice", text="what news from the mill?"),
    ChatLine(time="12:00:07", player="Alice", text="<Bob> joined the game"),
    PlayerLeft(time="12:00:08", player="Alice"),
]


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.log")))
def test_every_log_format_yields_the_same_events(fixture: str) -> None:
    lines = (FIXTURES / fixture).read_text(encoding="utf-8").splitlines()
    events = [event for line in lines if (event := parse_log_line(line)) is not None]
    assert events == EXPECTED


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[09:15:00] [Server thread/INFO]: Bob_2 (formerly known as Bobby) joined the game", PlayerJoined),
        ("[09:15:00] [Server thread/INFO]: <Al> too short a name", type(None)),
        ("[09:15:00] [Server thread/INFO]: <Alice Smith> spaces", type(None)),
        ("<Alice> no header at all", type(None)),
        ("[09:15:00] [Server thread/INFO]: <Alice> ", ChatLine),
        ("[09:15:00] [Server thread/INFO]: <Alice> hi\r\n", ChatLine),
    ],
)
def test_edge_lines(line: str, expected: type) -> None:
    assert type(parse_log_line(line)) is expected


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(text)


VANILLA = "[12:00:{:02d}] [Server thread/INFO]: <Alice> {}\n"


def test_starts_at_the_end_and_buffers_partial_lines(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    log.write_text(VANILLA.format(0, "old chat, never replayed"))
    tail = LogTail(log)
    assert tail.poll() == []
    _append(log, VANILLA.format(1, "first") + "[12:00:02] [Server thread/INFO]: <Alice> sec")
    assert tail.poll() == [VANILLA.format(1, "first").rstrip("\n")]
    _append(log, "ond")
    assert tail.poll() == []
    _append(log, "\n")
    assert tail.poll() == ["[12:00:02] [Server thread/INFO]: <Alice> second"]
    tail.close()


def test_follows_rotation_to_the_new_file(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    log.write_text("")
    tail = LogTail(log)
    tail.poll()
    _append(log, VANILLA.format(1, "last words before the restart"))
    os.rename(log, tmp_path / "2026-11-25-1.log")
    log.write_text(VANILLA.format(2, "first words after"))
    assert tail.poll() == [
        VANILLA.format(1, "last words before the restart").rstrip("\n"),
        VANILLA.format(2, "first words after").rstrip("\n"),
    ]
    _append(log, VANILLA.format(3, "more"))
    assert tail.poll() == [VANILLA.format(3, "more").rstrip("\n")]
    tail.close()


def test_reads_a_truncated_file_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    log.write_text(VANILLA.format(0, "a long line from before the truncation " * 3))
    tail = LogTail(log)
    tail.poll()
    log.write_text(VANILLA.format(5, "after truncation"))
    assert tail.poll() == [VANILLA.format(5, "after truncation").rstrip("\n")]
    tail.close()


def test_a_log_that_appears_later_is_read_from_its_start(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    tail = LogTail(log)
    assert tail.poll() == []
    log.write_text(VANILLA.format(1, "server started after the host"))
    assert tail.poll() == [VANILLA.format(1, "server started after the host").rstrip("\n")]
    tail.close()


async def test_events_stream_from_a_growing_file(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    log.write_text(VANILLA.format(0, "old"))
    tail = LogTail(log, poll_interval_s=0.01)
    await tail.open()  # marks the end now; a sleep instead would lose the lines on a busy machine
    events = tail.events()
    first = asyncio.ensure_future(anext(events))
    _append(log, "[12:00:09 INFO]: \x1b[33mBob_2 joined the game\x1b[0m\n[12:00:10 INFO]: noise\n")
    _append(log, "[12:00:11] [Server thread/INFO]: [Not Secure] <Bob_2> hi Bram\n")
    assert await asyncio.wait_for(first, 5) == PlayerJoined(time="12:00:09", player="Bob_2")
    assert await asyncio.wait_for(anext(events), 5) == ChatLine(time="12:00:11", player="Bob_2", text="hi Bram")
    await events.aclose()


async def test_lines_written_after_open_are_not_skipped(tmp_path: Path) -> None:
    log = tmp_path / "latest.log"
    log.write_text(VANILLA.format(0, "old"))
    tail = LogTail(log, poll_interval_s=0.01)
    await tail.open()
    _append(log, VANILLA.format(1, "said right after the host started"))
    lines = tail.lines()
    assert await asyncio.wait_for(anext(lines), 5) == VANILLA.format(1, "said right after the host started").rstrip()
    await lines.aclose()


def test_an_unreadable_log_is_logged_once_and_read_once_it_can_be(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = tmp_path / "latest.log"
    log.mkdir()  # unreadable as a file: OSError like running out of file handles, not FileNotFoundError
    tail = LogTail(log)
    assert [tail.poll() for _ in range(5)] == [[]] * 5
    errors = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(errors) == 1
    log.rmdir()
    log.write_text(VANILLA.format(0, "old chat, never replayed"))
    assert tail.poll() == []  # the first poll that opens it still starts at the end
    _append(log, VANILLA.format(1, "hello"))
    assert tail.poll() == [VANILLA.format(1, "hello").rstrip("\n")]
    tail.close()
