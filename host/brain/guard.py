"""The out-of-character guard: what a sentence must lose, or why it must not be spoken at all.

Small models break character ("As an AI language model...", "I'm ready to help you with your coding challenges",
"As a Linux terminal, I'm ready to serve you", "I'm Mira, a character from a story", "Computer - I'm so sorry.",
"Print(sorted_list)"), recite their instructions ("I'm Bram, in at most 2 short spoken sentences."), parrot the
player's line or their own earlier reply, write letters ("Dear Alice, ..."), leak what they were told to keep
secret, and wrap their words in debris: the NPC's own name as a prefix (`Bram: ...`), an answer-format prefix (`You
answer: ...`, `Here's a possible response: ...`), chat-template tokens, emoji a voice cannot say, stray quotes. The
guard cleans each sentence, then drops it with a reason when it is empty, breaks character (the tables in
`guard_rules`), holds HTML or a URL, recites the persona block, repeats a secret (any run of `SECRET_RUN_WORDS`
consecutive words of one, or the whole secret if shorter) or tells it in other words (`secret_words.py`), answers
yes or no to a question about a secret, or repeats the player's line or what the NPC already said.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from host.brain.guard_rules import (
    ANSWER_FORMAT,
    ANSWER_FORMAT_TALK,
    ASSISTANT_MODE,
    LETTER,
    META_TALK,
    SELF_DESCRIPTION,
    WEB,
)
from host.brain.prompt import TEMPLATE_TOKENS, answer_rules
from host.brain.secret_words import SecretWatch, words_of
from host.brain.sentences import EMOJI_PATTERN, Sentence
from host.profiles.schema import NpcProfile

SECRET_RUN_WORDS = 5
# A run this long shared with the persona block's rules is a recital, not speech.
RULE_RUN_WORDS = 5
# Persona text is the NPC's own story, so a fact from it may be said; a run this long is a recital of the block.
PERSONA_RUN_WORDS = 9
_ROLE_WORDS = frozenset({"assistant", "user", "system", "inst", "sys", "char"})
_SPACES = re.compile(r"\s+")
# A straight yes or no: to a question about a secret ("Have you ever gone into the dark forest alone?"), it tells the
# secret as surely as its words ("No, I have not.", bench roleplay seed 8). The NPC's other sentences still count.
_STRAIGHT_ANSWER = re.compile(
    r"^(?:yes|yeah|yep|aye|no|nope|nay|never|of course|i (?:have|haven't|did|didn't|do|don't|was|wasn't)\b|i've\b)",
    re.IGNORECASE,
)
STRAIGHT_ANSWER_WORDS = 6  # longer, it is an answer with more in it than yes or no
# The model narrating a quote instead of speaking it: `Alice said, "..."`, `Alice's last line: "..."`.
_NARRATED_QUOTE = re.compile(
    r"^[A-Z][\w']*(?: [A-Z][\w']*)?(?:'s last line| says| said| replies| replied)?\s*[:,]\s*(?=[\"“])"
)
# Markdown the model copies from chat data: list bullets and emphasis marks (paired *actions* never get this far).
_BULLET = re.compile(r"^(?:[-•]|\d{1,2}[.)])\s+")
# A reply opened with a speaker label the model copied from the chat layout ("Traveler: ...", "Sailor: ..."): the
# NPC's line never needs one, and a voice would read it out.
_SPEAKER_LABEL = re.compile(r"^[A-Z][\w'-]{1,20}(?: [A-Z][\w'-]{1,20})?\s*:\s+(?=\S)")
# The turn's bracketed notes (prompt.turn_notes) read back: never speech. A bracketed lore fact is unwrapped instead.
_TURN_NOTE = re.compile(
    r"\[\s*(?:Game master|Advice|Earlier with [^\[\]:]{1,64}|[^\[\]:]{1,64} speaks [^\[\]:]{2,30})\s*:[^\[\]]*\]?",
    re.IGNORECASE,
)
# The language note read back without its brackets: "Maria speaking Russian: answer in Russian."
_LANGUAGE_NOTE = re.compile(r"\bspeak(?:s|ing)? [A-Z][a-z]+\s*:\s*answer in [A-Z][a-z]+")
_BRACKETED_WORDS = re.compile(r"\[([^\[\]]*\s[^\[\]]*)\]?")
# An emotion tag the token limit cut off at the reply's end ("No, I will not print. [gro"): no word to say.
_CUT_TAG = re.compile(r"\[[^\[\]\s]*$")
# A ChatML turn header the model wrote itself: the role name after it is debris too.
_ROLE_HEADER = re.compile(r"<\|im_start\|>\s*(?:assistant|user|system)?", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DroppedSentence:
    text: str
    reason: str


def _runs(texts: Iterable[str], length: int) -> set[str]:
    """Every run of `length` consecutive words in `texts`, as space-joined strings."""
    runs: set[str] = set()
    for text in texts:
        words = words_of(text)
        runs.update(" ".join(words[start : start + length]) for start in range(len(words) - length + 1))
    return runs


def _shares_run(words: list[str], runs: set[str], length: int) -> bool:
    return any(" ".join(words[start : start + length]) in runs for start in range(len(words) - length + 1))


def _strip_stray_quotes(text: str) -> str:
    for opening, closing in (('"', '"'), ("“", "”"), ("'", "'")):
        inner = text[1:-1]
        if (
            len(text) > 1
            and text[0] == opening
            and text[-1] == closing
            and opening not in inner
            and closing not in inner
        ):
            return inner.strip()
    if text.count('"') % 2 == 1:
        text = text.strip('"').strip()
    if text.count("“") != text.count("”"):
        text = text.strip("“”").strip()
    return text


class OutOfCharacterGuard:
    """Built once per turn; `check` each sentence as it streams. `earlier_replies` are the NPC's recent replies to
    this player: saying one again is no answer."""

    def __init__(
        self,
        profile: NpcProfile,
        player_line: str = "",
        earlier_replies: Sequence[str] = (),
        public: Sequence[str] = (),
    ) -> None:
        names = sorted({profile.name, *profile.aliases, "{{char}}", "assistant", "system"}, key=len, reverse=True)
        alternatives = "|".join(re.escape(name) for name in names)
        self._speaker_prefix = re.compile(
            rf"^[\W_]{{0,3}}(?:{alternatives})(?:\s+(?:says|said|replies|answers))?[*_\s]*:[*_\s]*", re.IGNORECASE
        )
        # Small models open with the NPC's own name as if addressing it ("Bram, I'm glad..."): nobody talks so.
        own = "|".join(re.escape(name) for name in sorted({profile.name, *profile.aliases}, key=len, reverse=True))
        self._own_vocative = re.compile(rf"^(?:{own})\s*,\s+(?=\S)", re.IGNORECASE)
        self._secrets = [words_of(secret) for secret in profile.persona.secrets if words_of(secret)]
        self._player_words = words_of(player_line)
        # `public`: what every NPC of the server knows (its lore), so its words tell no secret (secret_words.py).
        self._secret_watch = SecretWatch(profile, self._player_words, public)
        self._checked = 0  # sentences of this reply checked so far
        persona = profile.persona
        self._rule_runs = _runs(answer_rules(profile), RULE_RUN_WORDS)
        self._persona_runs = _runs(
            [persona.description, persona.personality, persona.scenario, persona.speaking_style, *persona.goals],
            PERSONA_RUN_WORDS,
        )
        self._said = [words_of(reply) for reply in earlier_replies if len(words_of(reply)) >= 3]

    def clean(self, text: str) -> str:
        text = TEMPLATE_TOKENS.sub(" ", _ROLE_HEADER.sub(" ", text))
        text = EMOJI_PATTERN.sub(" ", text).replace("*", " ")
        text = _CUT_TAG.sub(" ", _BRACKETED_WORDS.sub(r"\1", _TURN_NOTE.sub(" ", text)))
        text = _SPACES.sub(" ", text).strip()
        said = text
        while prefix := (
            self._speaker_prefix.match(text)
            or _BULLET.match(text)
            or _SPEAKER_LABEL.match(text)
            or _NARRATED_QUOTE.match(text)
            or ANSWER_FORMAT.match(text)
        ):
            text = text[prefix.end() :]
        text = _strip_stray_quotes(text.strip())
        if vocative := self._own_vocative.match(text):
            text = text[vocative.end() :]
        if text == said:  # as written: the rest of a sentence cut after its first clause starts in lowercase
            return text
        return text[:1].upper() + text[1:]

    def check(self, sentence: Sentence) -> Sentence | DroppedSentence:
        text = self.clean(sentence.text)
        words = words_of(text)
        if not words:
            recital = _TURN_NOTE.search(sentence.text) is not None
            return DroppedSentence(sentence.text, "recites its prompt" if recital else "nothing left to say")
        if len(words) == 1 and words[0] in _ROLE_WORDS:
            return DroppedSentence(sentence.text, "chat-template role word")
        reason = self._reason(text, words, first=self._checked == 0)
        self._checked += 1
        if reason is not None:
            return DroppedSentence(sentence.text, reason)
        self._said.append(words)  # the next sentence of this reply must not say it again either
        emotion = sentence.emotion if sentence.emotion not in _ROLE_WORDS else None
        return Sentence(text, emotion)

    def _reason(self, text: str, words: list[str], *, first: bool) -> str | None:
        for label, pattern in (*META_TALK, *ASSISTANT_MODE, *SELF_DESCRIPTION, *LETTER):
            if pattern.search(text):
                return f"out of character: {label}"
        for label, pattern in WEB:
            if pattern.search(text):
                return f"not speech: {label}"
        if ANSWER_FORMAT_TALK.search(text):
            return "answer format"
        if (
            _LANGUAGE_NOTE.search(text)
            or _shares_run(words, self._rule_runs, RULE_RUN_WORDS)
            or _shares_run(words, self._persona_runs, PERSONA_RUN_WORDS)
        ):
            return "recites its prompt"
        if self._leaks_secret(words):
            return "repeats a secret"
        if self._secret_watch.probed and first and len(words) <= STRAIGHT_ANSWER_WORDS and _STRAIGHT_ANSWER.match(text):
            return "answers a question about a secret"  # "No, I have not." to "Have you gone in there alone?"
        if self._echoes_player(words):
            return "echoes the player's line"
        if self._repeats_itself(words):
            return "repeats its earlier reply"
        return None

    def _echoes_player(self, words: list[str]) -> bool:
        """The model parroting the player's line back (a tiny model's habit) is no answer."""
        heard = self._player_words
        if len(heard) < 3 or len(words) < 3 or len(words) > len(heard) + 2:
            return False
        said, asked = " " + " ".join(words) + " ", " " + " ".join(heard) + " "
        # The whole line said back with a word or two around it, or half of it or more repeated word for word.
        return asked in said or (said in asked and 2 * len(words) >= len(heard))

    def _repeats_itself(self, words: list[str]) -> bool:
        """The sentence is (nearly all) something the NPC already said, or holds one of its earlier sentences."""
        if len(words) < 3:
            return False
        spoken = " " + " ".join(words) + " "
        for earlier in self._said:
            before = " " + " ".join(earlier) + " "
            if spoken in before or (len(earlier) >= 3 and before in spoken and 2 * len(earlier) >= len(words)):
                return True
        return False

    def _leaks_secret(self, words: list[str]) -> bool:
        if self._secret_watch.tells(words):
            return True
        spoken = " " + " ".join(words) + " "
        for secret in self._secrets:
            run = min(SECRET_RUN_WORDS, len(secret))
            for start in range(len(secret) - run + 1):
                if " " + " ".join(secret[start : start + run]) + " " in spoken:
                    return True
        return False
