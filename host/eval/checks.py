"""Scoring one spoken reply against a scene's expectations. Each failed rule is one line saying what went wrong."""

from __future__ import annotations

from host.brain.language import detect_language, language_name
from host.brain.lore import compile_key
from host.eval.scenes import Scene, SceneDefaults


def mentions(reply: str, phrase: str) -> bool:
    """Whole words, any case, any whitespace between the words (the lore key matcher: `/regex/` works too)."""
    return compile_key(phrase).search(reply) is not None


def failed_rules(scene: Scene, defaults: SceneDefaults, reply: str, sentences: int) -> list[str]:
    """Why the reply fails the scene; empty when it passes."""
    failures: list[str] = []
    if scene.must_mention_any and not any(mentions(reply, phrase) for phrase in scene.must_mention_any):
        failures.append(f"mentions none of: {', '.join(scene.must_mention_any)}")
    for phrase in scene.must_not_mention:
        if mentions(reply, phrase):
            failures.append(f"mentions {phrase!r}")
    for phrase in [*defaults.forbidden, *scene.forbidden]:
        if mentions(reply, phrase):
            failures.append(f"forbidden: {phrase!r}")
    limit = scene.max_sentences or defaults.max_sentences
    if limit is not None and sentences > limit:
        failures.append(f"{sentences} sentences, at most {limit} allowed")
    if scene.language is not None:
        found = detect_language(reply)
        if found != scene.language:
            said = language_name(found) if found else "an unrecognised language"
            failures.append(f"answered in {said}, not {language_name(scene.language)}")
    return failures
