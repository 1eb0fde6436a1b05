"""Token counting for prompt budgets. The embedded backend can pass its real tokenizer instead of the estimate."""

from __future__ import annotations

import math
from collections.abc import Callable

TokenCounter = Callable[[str], int]

# English prose averages 3.5-4 characters per token in BPE vocabularies; 3.5 errs on the side of fitting.
CHARS_PER_TOKEN = 3.5


def approx_token_count(text: str) -> int:
    """A fast upper-side estimate: characters / 3.5, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
