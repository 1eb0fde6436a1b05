"""Which language a line is in, well enough to ask the NPC to answer in it and to check that it did.

No model: the script decides for languages with their own alphabet (Cyrillic, Greek, CJK, Arabic, Hebrew), and
common function words decide between the Latin-script languages. A line too short or too mixed to tell gives None,
and the NPC then simply answers in the language of its profile.
"""

from __future__ import annotations

import re

LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
    "ru": "Russian",
    "uk": "Ukrainian",
    "el": "Greek",
    "ja": "Japanese",
    "ko": "Korean",
    "zh": "Chinese",
    "ar": "Arabic",
    "he": "Hebrew",
}

_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ru", re.compile(r"[\u0400-\u04ff]")),  # or Ukrainian, told apart by the letters Russian does not use
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("ja", re.compile(r"[\u3040-\u30ff]")),  # kana; Japanese also uses Han, so kana is checked before Han
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
)
_UKRAINIAN_LETTERS = re.compile(r"[іїєґІЇЄҐ]")
_LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
_WORDS = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    code: frozenset(words.split())
    for code, words in {
        "en": "the a an is are was you your i my me we it this that what where who how of to and in on for with "
        "have do does not can there",
        "de": "der die das ist und ich du nicht ein eine wo wer wie was mit zu auf für ihr sie wir hast bist haben",
        "fr": "le la les est et je tu vous ne pas un une où qui que quoi avec pour dans sur il elle nous avez êtes",
        "es": "el la los las es y yo tú usted no un una dónde quién qué cómo con para en por hay tienes eres está",
        "it": "il lo la gli le è e io tu non un una dove chi che come con per sono hai sei",
        "pt": "o a os as é e eu você não um uma onde quem que como com para em tem está são",
        "nl": "de het een is en ik jij je niet waar wie wat hoe met voor op zijn heb heeft",
        "pl": "jest i ja ty nie gdzie kto co jak z na dla się to masz jesteś",
    }.items()
}


def language_name(code: str) -> str:
    """`ru` -> `Russian`; an unknown code is returned as it is (models understand many codes too)."""
    return LANGUAGE_NAMES.get(code.lower(), code)


def detect_language(text: str) -> str | None:
    """The language code of `text`, or None when it cannot be told."""
    letters = _LETTERS.findall(text)
    if not letters:
        return None
    for code, script in _SCRIPTS:
        if len(script.findall(text)) * 3 >= len(letters):
            return "uk" if code == "ru" and _UKRAINIAN_LETTERS.search(text) else code
    words = [word.lower() for word in _WORDS.findall(text)]
    scores = {code: sum(word in vocabulary for word in words) for code, vocabulary in _FUNCTION_WORDS.items()}
    best = max(scores, key=lambda code: scores[code])
    ranked = sorted(scores.values(), reverse=True)
    if ranked[0] == 0 or ranked[0] == ranked[1]:
        return None
    return best
