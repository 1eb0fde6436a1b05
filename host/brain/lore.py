"""World-info style lore activation: which lore entries the recent conversation calls for, within a token budget.

An entry activates when it is enabled and either constant or one of its primary `keys` occurs in the scanned text
(the player's line and the last few exchanges), subject to its secondary keys:

- AND_ANY: at least one secondary key occurs too (no secondary keys: the primary match is enough)
- AND_ALL: every secondary key occurs
- NOT_ANY: no secondary key occurs
- NOT_ALL: not every secondary key occurs

Keys match case-insensitively as whole words (`ale` does not match `tale`; `old mill` matches `Old  Mill`). A key
written as `/pattern/` is a regular expression (also case-insensitive). Activated entries are taken by priority,
higher first (ties keep profile order, NPC lore before server lore); an entry that does not fit the remaining budget
is left out and reported, and smaller entries after it may still fit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from host.brain.tokens import TokenCounter, approx_token_count
from host.errors import NpcHostError
from host.profiles.schema import LoreEntry, SelectiveLogic


class LoreKeyError(NpcHostError):
    code = "lore_key"


@dataclass(frozen=True, slots=True)
class ActiveLore:
    entry: LoreEntry
    tokens: int

    @property
    def label(self) -> str:
        """How reports name the entry: its name, else the start of its content."""
        return self.entry.name or self.entry.content[:40]


@dataclass(frozen=True, slots=True)
class LoreSelection:
    included: tuple[ActiveLore, ...]
    over_budget: tuple[ActiveLore, ...]

    @property
    def tokens(self) -> int:
        return sum(item.tokens for item in self.included)


@functools.lru_cache(maxsize=4096)
def compile_key(key: str) -> re.Pattern[str]:
    """The matcher for one key. Raises LoreKeyError for an empty key or a bad /regex/, naming it."""
    stripped = key.strip()
    if len(stripped) > 2 and stripped.startswith("/") and stripped.endswith("/"):
        try:
            return re.compile(stripped[1:-1], re.IGNORECASE)
        except re.error as exc:
            raise LoreKeyError(f"lore key {key!r}: invalid regular expression: {exc}") from exc
    words = stripped.split()
    if not words:
        raise LoreKeyError(f"lore key {key!r} is empty")
    # Lookarounds rather than \b so keys that start or end with punctuation ("st. mary") still match whole.
    body = r"\s+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _occurs(key: str, text: str) -> bool:
    return compile_key(key).search(text) is not None


def is_activated(entry: LoreEntry, text: str) -> bool:
    if not entry.enabled:
        return False
    if entry.constant:
        return True
    if not any(_occurs(key, text) for key in entry.keys):
        return False
    if not entry.secondary_keys:
        return True
    hits = [_occurs(key, text) for key in entry.secondary_keys]
    match entry.selective_logic:
        case SelectiveLogic.AND_ANY:
            return any(hits)
        case SelectiveLogic.AND_ALL:
            return all(hits)
        case SelectiveLogic.NOT_ANY:
            return not any(hits)
        case SelectiveLogic.NOT_ALL:
            return not all(hits)


def select_lore(
    entries: Iterable[LoreEntry],
    scan_texts: Sequence[str],
    *,
    budget_tokens: int,
    count_tokens: TokenCounter = approx_token_count,
) -> LoreSelection:
    """The activated entries that fit `budget_tokens`, by priority, and the activated ones that did not fit."""
    text = "\n".join(scan_texts)
    activated = [ActiveLore(entry, count_tokens(entry.content)) for entry in entries if is_activated(entry, text)]
    activated.sort(key=lambda item: -item.entry.priority)  # stable: ties keep the given order
    included: list[ActiveLore] = []
    over_budget: list[ActiveLore] = []
    remaining = budget_tokens
    for item in activated:
        if item.tokens <= remaining:
            included.append(item)
            remaining -= item.tokens
        else:
            over_budget.append(item)
    return LoreSelection(tuple(included), tuple(over_budget))
