"""Lore activation: whole-word keys, secondary logic, constants, priority and the token budget."""

from __future__ import annotations

import pytest

from host.brain.lore import LoreKeyError, compile_key, is_activated, select_lore
from host.profiles.schema import LoreEntry, SelectiveLogic


def entry(keys: list[str], **fields: object) -> LoreEntry:
    return LoreEntry.model_validate({"keys": keys, "content": "lore text", **fields})


ACTIVATION_CASES: list[tuple[str, LoreEntry, str, bool]] = [
    ("key found", entry(["ale"]), "Do you sell ale?", True),
    ("case-insensitive", entry(["Ale"]), "ALE please", True),
    ("whole word only", entry(["ale"]), "Tell me a tale", False),
    ("no key", entry(["ale"]), "Do you sell mead?", False),
    ("any primary key", entry(["mead", "ale"]), "ale!", True),
    ("multi-word key", entry(["old mill"]), "Who owns the Old\n Mill?", True),
    ("multi-word key needs all words", entry(["old mill"]), "the old windmill", False),
    ("key with punctuation", entry(["st. mary"]), "near St. Mary's chapel", True),
    ("regex key", entry(["/dragons?/"]), "I saw two DRAGONS", True),
    ("regex key misses", entry(["/^dragon$/"]), "a dragon flew", False),
    ("disabled never", entry(["ale"], enabled=False), "ale", False),
    ("constant always", entry([], constant=True), "anything at all", True),
    ("disabled constant never", entry([], constant=True, enabled=False), "anything", False),
    ("AND_ANY with one", entry(["ale"], secondary_keys=["price", "cost"]), "what does ale cost", True),
    ("AND_ANY with none", entry(["ale"], secondary_keys=["price", "cost"]), "ale is tasty", False),
    (
        "AND_ALL with all",
        entry(["ale"], secondary_keys=["price", "today"], selective_logic=SelectiveLogic.AND_ALL),
        "ale price today",
        True,
    ),
    (
        "AND_ALL with some",
        entry(["ale"], secondary_keys=["price", "today"], selective_logic=SelectiveLogic.AND_ALL),
        "ale price",
        False,
    ),
    (
        "NOT_ANY with none",
        entry(["ale"], secondary_keys=["dwarf"], selective_logic=SelectiveLogic.NOT_ANY),
        "an ale for me",
        True,
    ),
    (
        "NOT_ANY with one",
        entry(["ale"], secondary_keys=["dwarf"], selective_logic=SelectiveLogic.NOT_ANY),
        "an ale for the dwarf",
        False,
    ),
    (
        "NOT_ALL with some",
        entry(["ale"], secondary_keys=["dark", "strong"], selective_logic=SelectiveLogic.NOT_ALL),
        "a dark ale",
        True,
    ),
    (
        "NOT_ALL with all",
        entry(["ale"], secondary_keys=["dark", "strong"], selective_logic=SelectiveLogic.NOT_ALL),
        "a dark strong ale",
        False,
    ),
    ("secondary without primary", entry(["ale"], secondary_keys=["price"]), "the price of bread", False),
]


@pytest.mark.parametrize(
    ("lore", "text", "expected"), [c[1:] for c in ACTIVATION_CASES], ids=[c[0] for c in ACTIVATION_CASES]
)
def test_activation(lore: LoreEntry, text: str, expected: bool) -> None:
    assert is_activated(lore, text) is expected


def test_budget_keeps_higher_priority_and_reports_what_was_left_out() -> None:
    big_low = LoreEntry(name="low", keys=["mill"], content="x" * 70, priority=10)
    high = LoreEntry(name="high", keys=["mill"], content="y" * 70, priority=90)
    small_lowest = LoreEntry(name="tiny", keys=["mill"], content="z" * 7, priority=1)
    unrelated = LoreEntry(name="other", keys=["castle"], content="w", priority=100)
    selection = select_lore(
        [big_low, high, small_lowest, unrelated], ["Who runs the mill?"], budget_tokens=25
    )  # 70 chars ~ 20 tokens each
    assert [item.entry.name for item in selection.included] == ["high", "tiny"]
    assert [item.label for item in selection.over_budget] == ["low"]
    assert selection.tokens == 20 + 2


def test_priority_ties_keep_the_given_order_and_all_scan_texts_count() -> None:
    first = LoreEntry(name="npc", keys=["well"], content="the well is dry")
    second = LoreEntry(name="server", keys=["mayor"], content="the mayor is new")
    selection = select_lore([first, second], ["player: the mayor?", "npc: the well."], budget_tokens=100)
    assert [item.entry.name for item in selection.included] == ["npc", "server"]


def test_counts_tokens_with_the_given_counter() -> None:
    lore = LoreEntry(name="words", keys=["a"], content="one two three")
    selection = select_lore([lore], ["a"], budget_tokens=2, count_tokens=lambda text: len(text.split()))
    assert selection.included == ()
    assert selection.over_budget[0].tokens == 3


@pytest.mark.parametrize(("key", "message"), [("/[unclosed/", "invalid regular expression"), ("   ", "is empty")])
def test_bad_keys_are_named(key: str, message: str) -> None:
    with pytest.raises(LoreKeyError, match=message) as caught:
        compile_key(key)
    assert repr(key) in str(caught.value)
