"""The advisor's layer of an NPC's prompt: the stored advice that applies now (docs/advisor.md), highest priority
first, as many items as fit the server's `advisor.advice_tokens` budget. Read from the store, so a turn never waits
for an advisor pass."""

from __future__ import annotations

from collections.abc import Sequence

from host.brain.prompt import neutralise
from host.brain.tokens import TokenCounter, approx_token_count
from host.store import ActiveAdvice

DEFAULT_ADVICE_TOKENS = 120
_WARNING_LABELS = {
    "broke_character": "you broke character",
    "contradicted_lore": "you contradicted the lore",
    "leaked_secret": "you came close to revealing a secret",
    "repeated_itself": "you repeated yourself",
}


def advice_lines(
    items: Sequence[ActiveAdvice], budget_tokens: int, count: TokenCounter = approx_token_count
) -> tuple[str, ...]:
    """`items` (highest priority first) as prompt lines, skipping any that no longer fits the budget."""
    lines: list[str] = []
    spent = 0
    for item in items:
        line = _line(item)
        cost = count(line)
        if spent + cost > budget_tokens:
            continue
        lines.append(line)
        spent += cost
    return tuple(lines)


def _line(item: ActiveAdvice) -> str:
    # The advisor read what players said: its words get the same neutralising as theirs (no template tokens, no
    # brackets that would close the advice layer's note, one line).
    text = neutralise(item.text)
    if item.kind == "fact":
        return f"Remember: {text}"
    if item.kind == "mood":
        return f"Your mood now: {text}"
    if item.kind == "warning":
        return f"Careful, {_WARNING_LABELS.get(item.warning or '', 'a problem')}: {text}"
    return text
