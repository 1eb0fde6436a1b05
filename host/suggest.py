""" "Did you mean" for names a user typed: NPCs, emotions, settings."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(wanted: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice (compared case-insensitively), or '' when none is close."""
    by_folded = {choice.casefold(): choice for choice in choices}
    close = difflib.get_close_matches(wanted.casefold(), list(by_folded), n=1, cutoff=0.6)
    return f" (did you mean '{by_folded[close[0]]}'?)" if close else ""
