"""Turn-taking: whether a transcribed line sounds like the player has finished, so the host can wait longer before
answering one that does not ("Bram, when the bell rings tonight," ... "should we shut the gate?").

The bridge's VAD ends every utterance after the same silence (`vad.end_silence_ms`). A line that ends on a comma, a
conjunction or a preposition, or whose last clause opens with "when", "if", "because" ... and never gets its main
clause, is held by the speech role for the server's `[turn_taking] unfinished_hold_ms` more: if the player speaks
again in that time, the two utterances become one line; otherwise it is answered as it is.
"""

from __future__ import annotations

import re

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
