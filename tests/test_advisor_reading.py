"""Reading the transcript since the advisor's cursor: bounded per pass, complete lines only, across day files, and
nothing lost or read twice however the reads are cut; condensing chunks stay within their size."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from host.advisor.condense import chunks
from host.advisor.reading import read_new_lines
from host.store import AdvisorCursor
from host.transcript.grammar import format_line
from host.transcript.lines import SpokenLine
from host.transcript.writer import transcript_path


def _write_day(root: Path, day: date, count: int, start: int = 0) -> None:
    path = transcript_path(root, "example", day)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        for n in range(start, start + count):
            line = SpokenLine(source="chat", speaker="Alice", addressee="bram", text=f"line {n} " + "x" * 200)
            file.write(format_line(line) + "\n")


async def test_megabytes_are_read_over_several_bounded_passes_without_loss(tmp_path: Path) -> None:
    _write_day(tmp_path, date(2026, 12, 2), 6000)  # about 1.4 MB
    _write_day(tmp_path, date(2026, 12, 3), 3000, start=6000)
    seen: list[str] = []
    cursor: AdvisorCursor | None = None
    reads = 0
    while True:
        new = await read_new_lines(tmp_path, "example", cursor, max_bytes=256 * 1024)
        assert new.bytes_read <= 256 * 1024
        if not new.lines:
            break
        seen += [line.text.split()[1] for line in new.lines if isinstance(line, SpokenLine)]
        cursor, reads = new.cursor, reads + 1
    assert seen == [str(n) for n in range(9000)]  # in order, none twice, none lost
    last_file = transcript_path(tmp_path, "example", date(2026, 12, 3))
    assert reads >= 8 and cursor == AdvisorCursor(day="2026-12-03", offset=last_file.stat().st_size)


async def test_a_line_still_being_written_waits_and_bad_lines_are_skipped(tmp_path: Path) -> None:
    _write_day(tmp_path, date(2026, 12, 3), 2)
    path = transcript_path(tmp_path, "example", date(2026, 12, 3))
    with path.open("a", encoding="utf-8") as file:
        file.write("chat Alice > bram: unquoted text is not a transcript line\n")
        file.write('chat Bob > bram: "half a line')
    new = await read_new_lines(tmp_path, "example", None, max_bytes=1 << 20)
    assert len(new.lines) == 2 and new.bad_lines == 1
    with path.open("a", encoding="utf-8") as file:
        file.write(' finished"\n')
    rest = await read_new_lines(tmp_path, "example", new.cursor, max_bytes=1 << 20)
    assert [line.text for line in rest.lines if isinstance(line, SpokenLine)] == ["half a line finished"]


def test_chunks_stay_within_their_size_and_keep_every_line() -> None:
    lines = [f"Alice: {'word ' * (n % 50)}" for n in range(500)]
    parts = chunks(lines, 1000)
    assert all(len(part) <= 1000 for part in parts)
    assert "\n".join(parts).split("\n") == lines
    assert chunks(["y" * 5000], 1000) == ["y" * 1000]  # one huge line is cut, not sent whole


async def test_a_day_ending_without_a_newline_does_not_stall_the_next_days(tmp_path: Path) -> None:
    yesterday = transcript_path(tmp_path, "example", date(2026, 12, 2))
    yesterday.parent.mkdir(parents=True)
    yesterday.write_text("NOTE @bram: Alice owes an ale.")  # typed by hand, no newline at the end
    _write_day(tmp_path, date(2026, 12, 3), 1)
    new = await read_new_lines(tmp_path, "example", None, max_bytes=1 << 20)
    assert [type(line).__name__ for line in new.lines] == ["NoteLine", "SpokenLine"]
    assert new.cursor.day == "2026-12-03"
