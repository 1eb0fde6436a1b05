"""Debian's chromium, which `make test` installs (scripts/ensure-chromium.sh); the browser tests drive it through
Playwright with its executable path. Missing, the tests fail with the fix named: a skipped browser test proves
nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def chromium_path() -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` or `bash scripts/ensure-chromium.sh` to install it")
    return str(CHROMIUM)
