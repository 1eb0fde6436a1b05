"""A reply caught in a loop stops at the fifth repeat with the fallback line, not at the token limit."""

from __future__ import annotations

import pytest

from host.brain.loops import looping


@pytest.mark.parametrize(
    "written",
    [
        ", no, no, no, no, no",  # written by the packaged model to "Bram, do you have a room for the night?"
        "'no, no, no, no, no, no",
        "stew, stew, stew, stew, stew, stew",
        "ha ha ha ha ha ",
    ],
)
def test_a_short_stretch_written_five_times_is_a_loop(written: str) -> None:
    assert looping(written)


@pytest.mark.parametrize(
    "written",
    [
        "No, no, no, no.",  # emphatic, in character: four
        "Mushroom stew, friend, best in the valley. Two emeralds and I'll throw in bread.",
        "Hmm... yes. Slowly. I started this sentence last spring.",
        "Go, go, go! The pillagers are at the gate, go!",
        "...",
    ],
)
def test_ordinary_replies_are_not_loops(written: str) -> None:
    assert not looping(written)
