"""The out-of-character guard: what a sentence must lose, or why it must not be spoken at all.

Small models break character ("As an AI language model..."), leak what they were told to keep secret, and wrap their
words in debris: the NPC's own name as a prefix (`Bram: ...`), chat-template tokens, emoji that a voice cannot say,
stray quotes copied from the `Name says: "..."` prompt format. The guard cleans each sentence, then drops it when it
is empty, talks about being a model, a prompt or a role-play, or repeats a secret word for word (any run of
`SECRET_RUN_WORDS` consecutive words of a secret, or the whole secret if it is shorter).

The meta-talk rules are phrases, not single words, so an innkeeper may still praise "a man of fine character".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from host.brain.prompt import TEMPLATE_TOKENS
from host.brain.sentences import EMOJI_PATTERN, Sentence
from host.profiles.schema import NpcProfile

SECRET_RUN_WORDS = 5
_ROLE_WORDS = frozenset({"assistant", "user", "system", "inst", "sys", "char"})
_WORDS = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SPACES = re.compile(r"\s+")
# The model narrating a quote instead of speaking it: `Alice said, "..."`, `Alice's last line: "..."`.
_NARRATED_QUOTE = re.compile(
    r"^[A-Z][\w']*(?: [A-Z][\w']*)?(?:'s last line| says| said| replies| replied)?\s*[:,]\s*(?=[\"“])"
)
# Markdown the model copies from chat data: list bullets and emphasis marks (paired *actions* never get this far).
_BULLET = re.compile(r"^(?:[-•]|\d{1,2}[.)])\s+")
# A ChatML turn header the model wrote itself: the role name after it is debris too.
_ROLE_HEADER = re.compile(r"<\|im_start\|>\s*(?:assistant|user|system)?", re.IGNORECASE)

META_TALK: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (label, re.compile(pattern, re.IGNORECASE))
    for label, pattern in (
        (
            "as an AI",
            r"\bas an? (?:ai|a\.i\.|artificial intelligence|language model|chat ?bot|(?:ai |virtual )?assistant)\b",
        ),
        ("AI", r"(?-i:\bAI\b)|\bartificial intelligence\b"),
        ("language model", r"\blanguage models?\b|\bLLMs?\b"),
        (
            "assistant",
            r"\bi(?:'m| am) (?:just |only |merely )?(?:an? |your )?(?:helpful |virtual |ai )?"
            r"(?:assistant|chat ?bot|bot)\b",
        ),
        ("assistant", r"\b(?:helpful|virtual|ai) assistant\b"),
        ("AI company", r"\b(?:openai|chatgpt|anthropic|hugging ?face|gpt-?\d)\b"),
        ("role-play", r"\brole[- ]?play(?:s|ing|ed|er)?\b"),
        (
            "refusal boilerplate",
            r"\bi (?:cannot|can ?not|can't|am unable to|'m unable to|won't) "
            r"(?:fulfill|fulfil|comply with|assist with|help with (?:this|that|your) request)",
        ),
        ("refusal boilerplate", r"\bagainst my (?:guidelines|programming|policy|policies)\b"),
        ("character", r"\b(?:out of|breaking|break|broke|stay(?:ing)? in|remain(?:ing)? in) character\b"),
        (
            "character",
            r"\b(?:respond|reply|answer|speak|talk|act|keep|be)\w* (?:\w+ )?in character\b"
            r"|(?:^|,)\s*in character\s*(?:,|$)",
        ),
        (
            "character",
            r"\b(?:fictional|non-player|game) characters?\b|\bcharacter (?:description|sheet|card|profile)\b"
            r"|\bcharacter in (?:a|the|this) (?:role|story|game)\b",
        ),
        (
            "character",
            r"\b(?:play|plays|playing|portray|portraying|voicing) (?:a|the|this|my|your) character\b",
        ),
        ("persona", r"\bpersonas?\b(?! non grata)"),
        (
            "prompt",
            r"\b(?:system|initial|original|previous|above|my|the|your|this) prompts?\b"
            r"(?! (?:payment|reply|replies|service|attention|action|response|delivery|return))",
        ),
        ("prompt", r"\bsystem (?:message|instructions?)\b|\b(?:previous|above|original|initial) instructions\b"),
        (
            "training",
            r"\b(?:my|the) training data\b|\bmy programming\b|\bknowledge cut-?off\b|\bi (?:was|am) programmed\b",
        ),
        ("template placeholder", r"\{\{\s*(?:user|char)\s*\}\}"),
    )
)


@dataclass(frozen=True, slots=True)
class DroppedSentence:
    text: str
    reason: str


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower().replace("’", "'"))


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
    """Built once per profile; `check` each sentence as it streams."""

    def __init__(self, profile: NpcProfile, player_line: str = "") -> None:
        names = sorted({profile.name, *profile.aliases, "{{char}}", "assistant", "system"}, key=len, reverse=True)
        alternatives = "|".join(re.escape(name) for name in names)
        self._speaker_prefix = re.compile(
            rf"^[\W_]{{0,3}}(?:{alternatives})(?:\s+(?:says|said|replies|answers))?[*_\s]*:[*_\s]*", re.IGNORECASE
        )
        # Small models open with the NPC's own name as if addressing it ("Bram, I'm glad..."): nobody talks so.
        own = "|".join(re.escape(name) for name in sorted({profile.name, *profile.aliases}, key=len, reverse=True))
        self._own_vocative = re.compile(rf"^(?:{own})\s*,\s+(?=\S)", re.IGNORECASE)
        self._secrets = [_words(secret) for secret in profile.persona.secrets if _words(secret)]
        self._player_words = _words(player_line)

    def clean(self, text: str) -> str:
        text = TEMPLATE_TOKENS.sub(" ", _ROLE_HEADER.sub(" ", text))
        text = EMOJI_PATTERN.sub(" ", text).replace("*", " ")
        text = _SPACES.sub(" ", text).strip()
        while prefix := self._speaker_prefix.match(text) or _BULLET.match(text) or _NARRATED_QUOTE.match(text):
            text = text[prefix.end() :]
        text = _strip_stray_quotes(text.strip())
        if vocative := self._own_vocative.match(text):
            text = text[vocative.end() :]
            text = text[:1].upper() + text[1:]
        return text

    def check(self, sentence: Sentence) -> Sentence | DroppedSentence:
        text = self.clean(sentence.text)
        words = _words(text)
        if not words:
            return DroppedSentence(sentence.text, "nothing left to say")
        if len(words) == 1 and words[0] in _ROLE_WORDS:
            return DroppedSentence(sentence.text, "chat-template role word")
        for label, pattern in META_TALK:
            if pattern.search(text):
                return DroppedSentence(sentence.text, f"out of character: {label}")
        if self._leaks_secret(words):
            return DroppedSentence(sentence.text, "repeats a secret")
        if self._echoes_player(words):
            return DroppedSentence(sentence.text, "echoes the player's line")
        emotion = sentence.emotion if sentence.emotion not in _ROLE_WORDS else None
        return Sentence(text, emotion)

    def _echoes_player(self, words: list[str]) -> bool:
        """The model parroting the player's line back (a tiny model's habit) is no answer."""
        heard = self._player_words
        if len(heard) < 3 or len(words) < 3 or len(words) > len(heard) + 2:
            return False
        said, asked = " " + " ".join(words) + " ", " " + " ".join(heard) + " "
        # The whole line said back with a word or two around it, or half of it or more repeated word for word.
        return asked in said or (said in asked and 2 * len(words) >= len(heard))

    def _leaks_secret(self, words: list[str]) -> bool:
        spoken = " " + " ".join(words) + " "
        for secret in self._secrets:
            run = min(SECRET_RUN_WORDS, len(secret))
            for start in range(len(secret) - run + 1):
                if " " + " ".join(secret[start : start + run]) + " " in spoken:
                    return True
        return False
