"""A reply caught in a loop: the small packaged model sometimes writes the same few characters over and over
(", no, no, no, no, ..."), until its token limit. No sentence of it is kept, so the player heard nothing for the
whole limit (90 tokens, 1.3 s on two cores) and then the fallback line. Stopping at the fifth repeat gives the same
fallback about a second sooner; a reply that loops after good sentences keeps those.
"""

from __future__ import annotations

import re

# A unit of 2-12 characters, then four more copies of it, at the end of what was written.
_LOOPING_TAIL = re.compile(r"(.{2,12}?)\1{4,}$", re.DOTALL)
_TAIL_CHARS = 80  # enough for five copies of the longest unit


def looping(written: str) -> bool:
    """True when `written` (the reply so far) ends in a short stretch repeated five times or more."""
    return _LOOPING_TAIL.search(written[-_TAIL_CHARS:]) is not None
