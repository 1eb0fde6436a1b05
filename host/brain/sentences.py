"""Cut a streamed reply into sentences as soon as each one ends, so TTS can start before the reply is finished.

    splitter = SentenceSplitter()
    splitter.feed("[happy] Welcome, Mr. Smith! The ale")   # -> [Sentence("Welcome, Mr. Smith!", "happy")]
    splitter.feed(" is 3.5 coins.")                        # -> []  (the end is confirmed by what follows)
    splitter.flush()                                       # -> [Sentence("The ale is 3.5 coins.", None)]

A sentence ends at a run of end marks (`.`, `!`, `?`, `…`, emoji) plus any closing quotes or brackets, followed by
whitespace and then a character that is not a lowercase letter (`"Go!" he said.` stays one sentence); a newline always
ends one. A `.` after a title or a single letter (`Mr.`, `Dr.`, `St.`, `e.g.`, `J.`) never ends a sentence, and a
decimal (`3.5`) has no whitespace after its `.`. Deciding needs one character of look-ahead after the whitespace, so
the result is the same however the text is cut into pieces.

Emotion tags `[happy]` and stage directions `*whispers*` are removed from the text; the first one seen in a sentence
(or before it) becomes that sentence's `emotion`, lowercased. Action tags (`[follow]`, `[give bread]`; see
host/npc_actions.py) are removed too and never become an emotion; the turn reads them from the whole reply.

`first_clause_min_chars` (off unless given): the first sentence of a reply may be cut early at `,` or `;` once it holds
that many characters, so the first clause reaches TTS sooner (a latency lever); such a `Sentence` has `clause` set,
and the rest of the sentence follows in the same emotion. A caller that drops the sentences cut so far calls
`first_sentence_again`, so the first sentence said is the one cut early.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from host.npc_actions import strip_action_tags

END_MARKS = frozenset(".!?…")
CLOSERS = frozenset("\"')]}»”’")
CLAUSE_MARKS = frozenset(",;")  # not ":", which announces what follows ("the following:")
# Pictographs, symbols, flags, and the joiners/selectors that glue multi-codepoint emoji together.
EMOJI_PATTERN = re.compile(
    "[\U0001f000-\U0001faff\U00002600-\U000027bf\U0001f1e6-\U0001f1ff\U00002b00-\U00002bff\u200d\ufe0f\u20e3]+"
)
TAG_PATTERN = re.compile(r"\[\s*([A-Za-z][A-Za-z \-]{0,23}?)\s*\]|\*\s*([A-Za-z][A-Za-z ,\-]{0,38}?)\s*\*")
# Lowercased word before a `.` that never ends a sentence (titles and Latin abbreviations used mid-sentence).
NEVER_FINAL = frozenset(
    {"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "capt", "lt", "col", "gen", "sgt", "rev", "mt", "fr", "vs"}
    | {"e.g", "i.e", "cf", "approx", "ca", "viz"}
)
_WORD_BEFORE_DOT = re.compile(r"(?<![\w'’])((?:[A-Za-z]\.)*[A-Za-z]+)$")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Sentence:
    text: str
    emotion: str | None = None
    clause: bool = False  # the first clause of a sentence, cut early (`first_clause_min_chars`); the rest follows


def is_emoji(char: str) -> bool:
    return EMOJI_PATTERN.fullmatch(char) is not None


def strip_tags(raw: str) -> tuple[str, str | None]:
    """Remove action tags (host/npc_actions.py: never an emotion), emotion tags and stage directions; return the
    clean text and the first emotion tag, lowercased."""
    raw = strip_action_tags(raw)
    first = TAG_PATTERN.search(raw)
    emotion = None
    if first is not None:
        emotion = _SPACES.sub(" ", (first.group(1) or first.group(2)).strip().lower())
    return _SPACES.sub(" ", TAG_PATTERN.sub(" ", raw)).strip(), emotion


class SentenceSplitter:
    """Feed text pieces as they stream; get each `Sentence` as soon as its end is certain, the rest on `flush()`."""

    def __init__(self, *, first_clause_min_chars: int | None = None) -> None:
        if first_clause_min_chars is not None and first_clause_min_chars < 1:
            raise ValueError("first_clause_min_chars must be at least 1")
        self._first_clause_min_chars = first_clause_min_chars
        self._buffer = ""
        self._emitted = 0
        self._pending_emotion: str | None = None

    def feed(self, piece: str) -> list[Sentence]:
        self._buffer += piece
        sentences: list[Sentence] = []
        while (cut := self._find_cut()) is not None:
            end, resume = cut
            # Only a clause cut resumes right at its end (a sentence's end skips whitespace or a newline).
            clause = end == resume and self._buffer[end - 1] in CLAUSE_MARKS
            sentence = self._make_sentence(self._buffer[:end], clause=clause)
            self._buffer = self._buffer[resume:]
            if sentence is not None:
                sentences.append(sentence)
        return sentences

    def first_sentence_again(self) -> None:
        """Everything cut so far was dropped (the guard kept it from being said): the next sentence is the first the
        players hear, so it may still be cut after its first clause."""
        self._emitted = 0

    def flush(self) -> list[Sentence]:
        """End of the stream: whatever is left is the last sentence. The splitter is then ready for a new reply."""
        sentence = self._make_sentence(self._buffer)
        self._buffer = ""
        self._emitted = 0
        self._pending_emotion = None
        return [sentence] if sentence is not None else []

    def _make_sentence(self, raw: str, *, clause: bool = False) -> Sentence | None:
        text, emotion = strip_tags(raw)
        emotion = self._pending_emotion or emotion
        if not text:
            # A tag on a line of its own belongs to the sentence that follows it.
            self._pending_emotion = emotion
            return None
        # The rest of a sentence cut after its first clause is said in the same voice.
        self._pending_emotion = emotion if clause else None
        self._emitted += 1
        return Sentence(text, emotion, clause)

    def _find_cut(self) -> tuple[int, int] | None:
        """(end of the sentence, where the next one starts), or None while no end is certain yet."""
        buffer = self._buffer
        index = 0
        while index < len(buffer):
            char = buffer[index]
            if char == "\n":
                return index, index + 1
            if char in END_MARKS or is_emoji(char):
                verdict = self._judge_end(index)
                if verdict is None or isinstance(verdict, tuple):
                    return verdict
                index = verdict
                continue
            if char in CLAUSE_MARKS and self._clause_cut_allowed(index):
                if index + 1 == len(buffer):
                    return None
                if buffer[index + 1].isspace():
                    return index + 1, index + 1
            index += 1
        return None

    def _judge_end(self, start: int) -> tuple[int, int] | int | None:
        """For an end-mark run at `start`: a cut, the index to keep scanning from, or None (need more text)."""
        buffer = self._buffer
        end = start
        while end < len(buffer) and (buffer[end] in END_MARKS or buffer[end] in CLOSERS or is_emoji(buffer[end])):
            end += 1
        if end == len(buffer):
            return None
        if not buffer[end].isspace():
            return end  # 3.5, e.g, file.txt: no break without whitespace
        after = end
        while after < len(buffer) and buffer[after].isspace():
            if buffer[after] == "\n":
                return end, after + 1
            after += 1
        if after == len(buffer):
            return None
        if buffer[after].islower() or is_emoji(buffer[after]):
            return after  # a lowercase word continues the sentence; a trailing emoji stays with it
        if buffer[start:end].rstrip("".join(CLOSERS)) == "." and self._is_abbreviation(start):
            return after
        return end, after

    def _is_abbreviation(self, dot: int) -> bool:
        match = _WORD_BEFORE_DOT.search(self._buffer[:dot])
        if match is None:
            return False
        word = match.group(1).lower()
        return len(word) == 1 or word in NEVER_FINAL

    def _clause_cut_allowed(self, index: int) -> bool:
        limit = self._first_clause_min_chars
        if limit is None or self._emitted > 0:
            return False
        return len(strip_tags(self._buffer[: index + 1])[0]) >= limit
