"""Secrets told in other words: which words of an NPC's secret give it away, and when a sentence uses enough of them.

A secret's *telling* words are its words of four letters or more, plain words aside, that the NPC's public story
does not use (its description, personality, scenario, speaking style, first message and example dialogue, and the
server's lore, which every NPC knows). Hilde's "She is afraid of the dark forest since the raid, and has not gone
past its edge alone" tells with "afraid", "gone", "alone": the dark forest and the raid are village knowledge.

- A player whose line holds two telling words of a secret is asking about it (`probed`). In the answer, a sentence
  with a telling word and another word of the secret tells it: "I'm afraid of the darkness." (bench roleplay, seed 10).
- Otherwise a sentence tells a secret only with three of its telling words: an NPC talks of its own world freely
  ("The forest is dark at night.", Old Birch's "My crown turns golden every autumn.").

Word forms meet when one is the other plus a common ending ("dark", "darkness"; "remember", "remembers").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from host.profiles.schema import NpcProfile

# Telling words a sentence needs to tell a secret nobody asked about; with the question asked, one and another word.
UNASKED_TELLING_WORDS = 3
ASKED_TELLING_WORDS = 2
_WORDS = re.compile(r"[^\W_]+(?:'[^\W_]+)?")
_ENDINGS = ("s", "es", "d", "ed", "ing", "er", "ers", "est", "ness", "y", "ly", "en")
# Words of four letters or more that tell nothing on their own.
_PLAIN = frozenset(
    _WORDS.findall(
        "that this with from have been were when where what which there their they them then than into onto "
        "upon about over under after before since every always never still just only also very much many some "
        "more most other each like even ever does doing done told tell said says know knows will would could "
        "should shall being here your yours mine ours itself himself herself themselves someone something "
        "nothing anything behind keep keeps kept"
    )
)


def words_of(text: str) -> list[str]:
    return _WORDS.findall(text.lower().replace("’", "'"))


def same_word(word: str, other: str) -> bool:
    """The same word in another form: equal, or one is the other plus a common ending ("dark", "darkness")."""
    short, long = sorted((word, other), key=len)
    return short == long or (long.startswith(short) and long[len(short) :] in _ENDINGS)


def _uses(words: Iterable[str], wanted: Iterable[str]) -> int:
    spoken = list(words)
    return sum(any(same_word(word, want) for word in spoken) for want in wanted)


@dataclass(frozen=True)
class SecretWords:
    words: frozenset[str]  # the secret's words of four letters or more, plain ones aside
    telling: frozenset[str]  # those the public story does not use


class SecretWatch:
    """The secrets of one NPC for one turn: `probed` when the player's line asks about one."""

    def __init__(self, profile: NpcProfile, player_words: Sequence[str], public: Sequence[str] = ()) -> None:
        persona = profile.persona
        public_text = [
            profile.name,
            *profile.aliases,
            persona.description,
            persona.personality,
            persona.scenario,
            persona.speaking_style,
            persona.first_message,
            *persona.example_dialogue,
            *public,
        ]
        known = {word for text in public_text for word in words_of(text)}
        self.secrets: list[SecretWords] = []
        for secret in persona.secrets:
            words = frozenset(word for word in words_of(secret) if len(word) >= 4 and word not in _PLAIN)
            telling = frozenset(word for word in words if not any(same_word(word, open_word) for open_word in known))
            if telling:
                self.secrets.append(SecretWords(words, telling))
        self.probed = any(_uses(player_words, secret.telling) >= ASKED_TELLING_WORDS for secret in self.secrets)

    def tells(self, words: Sequence[str]) -> bool:
        """Whether a sentence of these words gives a secret away in other words."""
        for secret in self.secrets:
            telling = _uses(words, secret.telling)
            if telling >= UNASKED_TELLING_WORDS:
                return True
            if self.probed and telling >= 1 and _uses(words, secret.words) >= ASKED_TELLING_WORDS:
                return True
        return False
