"""The gateway's check of admin-set bridge tokens against the store: a new token works at once, and when the database
cannot be read the last token read keeps working (a warning, not a failed connection handler)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from host.roles.bridge_tokens import StoredTokenCheck
from host.store import Store


async def test_the_last_token_read_keeps_working_while_the_database_cannot_be_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "npc-host.db"
    store = await Store.open(f"sqlite+aiosqlite:///{path}")
    try:
        check = StoredTokenCheck(store.bridge_tokens, "survival", fresh_s=0.0)  # every hello reads the store
        assert not await check("no token is set for this server yet")
        token = await store.bridge_tokens.issue("survival", by="ada")
        assert await check(token)  # set a moment ago: taken at once
        _remove_database_files(path)
        await store.db.engine.dispose()  # the next read opens a new, empty file: no table to read
        with caplog.at_level(logging.WARNING):
            assert await check(token)
            assert not await check(token[:-1])
        warnings = [r.getMessage() for r in caplog.records if "cannot read its bridge token" in r.getMessage()]
        assert len(warnings) == 1 and token not in caplog.text
    finally:
        await store.close()


def _remove_database_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
