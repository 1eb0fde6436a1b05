"""Turn-taking: whether a transcribed line sounds like the player has finished, so the host can wait longer before
answering one that does not ("Bram, when the bell rings tonight," ... "should we shut the gate?").

The bridge's VAD ends every utterance after the same silence (`vad.end_silence_ms`). A line that ends on a comma, a
conjunction or a preposition, or whose last clause opens with "when", "if", "because" ... and never gets its main
clause, is held by the speech role for the server's `[turn_taking] unfinished_hold_ms` more: if the player speaks
again in that time, the two utterances become one line; otherwise it is answered as it is.

The other way round, a line whose speculative transcript (made at the pause) sounds finished may end sooner: after
`question_end_ms` of silence when it ends on "?" or "!", after `sentence_end_ms` when it is a whole sentence. The
bridge, which owns the VAD, shortens that utterance's wait (`finished_wait_ms`).
"""

from __future__ import annotations

import re

from host.profiles.schema import TurnTakingSpec

# Words a finished sentence rarely ends on: conjunctions, articles, prepositions, possessives.
_TRAILING = frozenset(
    {
        *("and", "but", "or", "so", "because", "if", "when", "than", "that", "the", "a", "an"),
        *("to", "of", "in", "on", "at", "for", "with", "from", "about", "into", "onto", "by"),
        *("my", "your", "his", "her", "our", "their", "its"),
    }
)
# Words that open a clause which needs another one after it.
_SUBORDINATORS = frozenset(
    {
        *("when", "if", "because", "while", "after", "before", "since", "although", "though"),
        *("unless", "until", "whenever", "once", "whereas"),
    }
)
_WORDS = re.compile(r"[a-z']+")
_ANY_WORD = re.compile(r"[^\W_]+")
# A player who paused after a word or two ("Bram," or "Brand." as Whisper may hear it) nearly always goes on.
MIN_LINE_WORDS = 3
_OPEN_ENDINGS = (",", ";", ":", "-", "\u2013", "\u2014", "...", "\u2026")


def sounds_unfinished(text: str) -> bool:
    """True when `text` (Whisper's punctuation included) sounds like the first part of what the player meant."""
    stripped = text.strip()
    if not stripped or stripped.endswith(("?", "!")):
        return False
    if stripped.endswith(_OPEN_ENDINGS):
        return True
    words = _WORDS.findall(stripped.lower())
    if words and words[-1] in _TRAILING:
        return True
    clauses = [clause for clause in re.split(r"[,;:]", stripped.rstrip(".")) if clause.strip()]
    last_clause = _WORDS.findall(clauses[-1].lower()) if clauses else []
    return bool(last_clause) and last_clause[0] in _SUBORDINATORS


def few_words(text: str) -> bool:
    """Fewer than `MIN_LINE_WORDS` different words: too little to act on before the endpoint. Whisper hears a lone
    name before a pause as the name over and over ("Hilde. Hilde. Hilde."), which is still one word."""
    return len({word.casefold() for word in _ANY_WORD.findall(text)}) < MIN_LINE_WORDS


def finished_wait_ms(text: str, spec: TurnTakingSpec) -> int | None:
    """The silence after which `text` is answered when it sounds finished: the server's `question_end_ms` after a
    question or exclamation, `sentence_end_ms` after a sentence; None when it sounds unfinished, ends otherwise or
    has too few words."""
    stripped = text.strip()
    if few_words(stripped):
        return None
    if stripped.endswith(("?", "!")):
        return spec.question_end_ms
    if stripped.endswith(".") and not sounds_unfinished(stripped):  # "..." sounds unfinished
        return spec.sentence_end_ms
    return None
