"""`npc-host admin create-user`: the password from stdin (or a no-echo prompt), checked role and password, and a
user that then signs in with exactly that password."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import SecretStr

from host.store import Store
from tests.admin_support import create_user
from tests.host_process import host_env


def _store_url(workdir: Path) -> str:
    return f"sqlite+aiosqlite:///{workdir / 'data' / 'npc-host.db'}"


async def test_a_user_made_from_stdin_signs_in_with_that_password(tmp_path: Path) -> None:
    env = host_env(tmp_path)
    made = await asyncio.to_thread(create_user, env, tmp_path, "kim", "operator", "a long secret")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "created operator kim"
    assert "a long secret" not in made.stdout + made.stderr
    store = await Store.open(_store_url(tmp_path))
    try:
        user = await store.admin_users.verify("kim", SecretStr("a long secret"))
        assert user is not None and user.role == "operator"
        assert await store.admin_users.verify("kim", SecretStr("a long secre")) is None
    finally:
        await store.close()
    again = await asyncio.to_thread(create_user, env, tmp_path, "kim", "viewer", "another secret")
    assert again.returncode == 1 and "already exists" in again.stderr


async def test_an_unknown_role_and_a_short_password_are_refused_by_name(tmp_path: Path) -> None:
    env = host_env(tmp_path)
    role = await asyncio.to_thread(create_user, env, tmp_path, "kim", "god", "a long secret")
    assert role.returncode == 2 and "--role must be one of admin, operator, viewer" in role.stderr
    short = await asyncio.to_thread(create_user, env, tmp_path, "kim", "viewer", "short")
    assert short.returncode == 2 and "password" in short.stderr
    assert "short" not in short.stderr.replace("password", "")
