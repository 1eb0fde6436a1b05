"""The sentence splitter over a table of cases, fed whole and one character at a time."""

from __future__ import annotations

import pytest

from host.brain.sentences import Sentence, SentenceSplitter


def split_whole(text: str, **options: int) -> list[Sentence]:
    splitter = SentenceSplitter(**options)  # type: ignore[arg-type]
    return splitter.feed(text) + splitter.flush()


def split_by_char(text: str, **options: int) -> list[Sentence]:
    splitter = SentenceSplitter(**options)  # type: ignore[arg-type]
    out: list[Sentence] = []
    for char in text:
        out.extend(splitter.feed(char))
    return out + splitter.flush()


S = Sentence
CASES: list[tuple[str, str, list[Sentence]]] = [
    ("two plain sentences", "Hello there. How are you?", [S("Hello there."), S("How are you?")]),
    ("no end mark at all", "well met traveler", [S("well met traveler")]),
    ("leading whitespace", "   \n  Welcome in. Sit.", [S("Welcome in."), S("Sit.")]),
    (
        "titles",
        "Mr. Smith met Dr. Jones at St. Mary's. Then rain.",
        [S("Mr. Smith met Dr. Jones at St. Mary's."), S("Then rain.")],
    ),
    (
        "e.g. and i.e.",
        "Bring food, e.g. bread. Or coin, i.e. silver. Fine.",
        [S("Bring food, e.g. bread."), S("Or coin, i.e. silver."), S("Fine.")],
    ),
    (
        "etc. mid and end",
        "Ale, mead, etc. are sold. I sell ale, mead, etc. Come in.",
        [S("Ale, mead, etc. are sold."), S("I sell ale, mead, etc."), S("Come in.")],
    ),
    ("initials", "J. R. Tolkien wrote it. Yes.", [S("J. R. Tolkien wrote it."), S("Yes.")]),
    ("decimals", "It costs 3.5 coins. Pay now.", [S("It costs 3.5 coins."), S("Pay now.")]),
    ("ellipsis then lowercase", "Well... maybe. Fine.", [S("Well... maybe."), S("Fine.")]),
    ("ellipsis then capital", "Well... Maybe not.", [S("Well..."), S("Maybe not.")]),
    ("unicode ellipsis", "Hmm… Who knows?", [S("Hmm…"), S("Who knows?")]),
    ("closing quote and said", '"Go!" he said. She ran.', [S('"Go!" he said.'), S("She ran.")]),
    ("closing quote ends", 'He yelled "Run!" Then silence.', [S('He yelled "Run!"'), S("Then silence.")]),
    ("bracket after mark", "It was late (past ten.) We slept.", [S("It was late (past ten.)"), S("We slept.")]),
    ("runs of ?!", "What?! Really?!? Yes!!", [S("What?!"), S("Really?!?"), S("Yes!!")]),
    ("emoji ends and stays", "Welcome! 😀 Sit down 🍺 Drink up.", [S("Welcome! 😀"), S("Sit down 🍺"), S("Drink up.")]),
    ("emoji mid sentence", "I 🍺 love ale.", [S("I 🍺 love ale.")]),
    ("newlines are boundaries", "First line\nSecond line\n\nThird", [S("First line"), S("Second line"), S("Third")]),
    ("newline after end mark", "Done.\nnext thing", [S("Done."), S("next thing")]),
    (
        "emotion tags",
        "[happy] Welcome back! [sad] The well ran dry.",
        [S("Welcome back!", "happy"), S("The well ran dry.", "sad")],
    ),
    ("tag mid sentence", "Oh [Surprised] you came. Good.", [S("Oh you came.", "surprised"), S("Good.")]),
    ("stage direction", "*whispers* The mayor lies. Hush.", [S("The mayor lies.", "whispers"), S("Hush.")]),
    ("tag on its own line", "[angry]\nGet out!", [S("Get out!", "angry")]),
    ("tag at the end is dropped", "Bye now. [happy]", [S("Bye now.")]),
    ("only tags", "[happy] ", []),
    ("brackets that are not tags", "Room [3] is free.", [S("Room [3] is free.")]),
]


@pytest.mark.parametrize(("text", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_splits_like_the_table_whole_and_char_by_char(text: str, expected: list[Sentence]) -> None:
    assert split_whole(text) == expected
    assert split_by_char(text) == expected


@pytest.mark.parametrize(("text", "expected"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_any_cut_into_two_pieces_gives_the_same_sentences(text: str, expected: list[Sentence]) -> None:
    for cut in range(1, len(text)):
        splitter = SentenceSplitter()
        assert splitter.feed(text[:cut]) + splitter.feed(text[cut:]) + splitter.flush() == expected, cut


CLAUSE_CASES: list[tuple[str, int, list[Sentence]]] = [
    (
        "Well now, traveler, the road north is long and full of wolves, so rest here. Go on, then, friend.",
        30,
        [
            S("Well now, traveler, the road north is long and full of wolves,", clause=True),
            S("so rest here."),
            S("Go on, then, friend."),
        ],
    ),
    ("Short, sweet. Next.", 30, [S("Short, sweet."), S("Next.")]),
    (
        "Ale costs 3,5 coins here; or so they say. Ok.",
        10,
        [S("Ale costs 3,5 coins here;", clause=True), S("or so they say."), S("Ok.")],
    ),
]


@pytest.mark.parametrize(("text", "min_chars", "expected"), CLAUSE_CASES)
def test_first_clause_cut_only_when_long_enough(text: str, min_chars: int, expected: list[Sentence]) -> None:
    assert split_whole(text, first_clause_min_chars=min_chars) == expected
    assert split_by_char(text, first_clause_min_chars=min_chars) == expected


def test_clause_cut_is_off_by_default() -> None:
    text = "Well now, traveler, the road north is long and full of wolves, so rest here."
    assert split_whole(text) == [S(text)]


def test_a_sentence_comes_out_while_the_reply_is_still_streaming() -> None:
    splitter = SentenceSplitter()
    assert splitter.feed("Welcome to the") == []
    assert splitter.feed(" Prancing Pony.") == []  # could still be "Pony.com" or "Pony. and"
    assert splitter.feed(" What") == [S("Welcome to the Prancing Pony.")]
    assert splitter.feed(" will it be") == []
    assert splitter.flush() == [S("What will it be")]


def test_flush_resets_for_the_next_reply() -> None:
    splitter = SentenceSplitter(first_clause_min_chars=5)
    assert splitter.feed("[sad] Alas, ") == [S("Alas,", "sad", clause=True)]
    splitter.flush()
    assert splitter.feed("Again, ") == [S("Again,", clause=True)]


def test_the_rest_of_a_sentence_cut_after_its_clause_keeps_its_emotion() -> None:
    splitter = SentenceSplitter(first_clause_min_chars=5)
    assert splitter.feed("[sad] Alas, the road is gone. ") == [S("Alas,", "sad", clause=True)]
    assert splitter.feed("[happy] Still, ale!") == [S("the road is gone.", "sad")]
    assert splitter.flush() == [S("Still, ale!", "happy")]


def test_rejects_a_nonsense_clause_length() -> None:
    with pytest.raises(ValueError, match="first_clause_min_chars"):
        SentenceSplitter(first_clause_min_chars=0)
