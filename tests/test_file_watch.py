"""Hot reload goes on when the system has no inotify instance left (the suite's browsers and hosts can use all 128)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

PROBE = textwrap.dedent(
    """
    import asyncio, ctypes, logging, shutil, sys, time
    from pathlib import Path

    from host.profiles.registry import ProfileRegistry

    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(message)s")
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    held = 0
    while libc.inotify_init() >= 0:  # take every inotify instance this user may have
        held += 1
    print("held", held, flush=True)

    async def main() -> None:
        root = Path(sys.argv[1])
        registry = ProfileRegistry(root, debounce_ms=50)
        await registry.start()
        await asyncio.sleep(2)  # the watcher (here: the poller) takes its first look before the change
        (root / "tavern").mkdir()
        (root / "tavern" / "server.toml").write_text('name = "tavern"\\ngame = "table"\\n')
        deadline = time.monotonic() + 20
        while "tavern" not in registry.server_names() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        print("servers", sorted(registry.server_names()), flush=True)
        await registry.stop()

    asyncio.run(main())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")
def test_profiles_hot_reload_by_polling_when_no_watcher_can_be_made(tmp_path: Path) -> None:
    root = tmp_path / "profiles"
    root.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(root)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "servers ['tavern']" in done.stdout, done.stdout + done.stderr
    assert "polling it every 1000 ms instead" in done.stdout
