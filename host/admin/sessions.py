"""Signed-in sessions (in the database, so they outlast a restart and hold in every admin process) and sign-in rate
limits (in this process's memory).

A session is a random 256-bit id in an HttpOnly, SameSite=Strict cookie; the database keeps only its hash
(host/store/admin_sessions.py). Its CSRF token, which the page sends back in the `X-CSRF-Token` header on every
state-changing request, is derived from the id with a keyed hash: any admin process can check it, nothing extra is
stored, and knowing it (the page's scripts can read it) reveals nothing of the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from host.store import OpenSession
from host.store.admin_sessions import AdminSessionRepo

Role = Literal["admin", "operator", "viewer"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}

MAX_LIMITED_KEYS = 50_000
MAX_SESSION_ID_CHARS = 128  # a cookie longer than any id we hand out is not looked up


@dataclass(frozen=True)
class Session:
    token: str
    user: str
    role: Role
    csrf: str
    expires_at: float

    def allows(self, needed: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"npc-host csrf", hashlib.sha256).hexdigest()


class SessionStore:
    def __init__(self, sessions: AdminSessionRepo, lifetime_s: float) -> None:
        self.lifetime_s = lifetime_s
        self._sessions = sessions

    async def open(self, user: str) -> Session:
        token, opened = await self._sessions.open(user, timedelta(seconds=self.lifetime_s))
        return _session(token, opened)

    async def get(self, token: str | None) -> Session | None:
        if not token or len(token) > MAX_SESSION_ID_CHARS:
            return None
        opened = await self._sessions.get(token)
        return _session(token, opened) if opened is not None else None

    async def close(self, token: str) -> None:
        await self._sessions.close(token)


def _session(token: str, opened: OpenSession) -> Session:
    return Session(
        token=token, user=opened.user, role=opened.role, csrf=csrf_for(token), expires_at=opened.expires_at.timestamp()
    )


@dataclass
class _Window:
    failures: deque[float] = field(default_factory=deque)


class SignInLimiter:
    """Failed sign-ins per user name and per client address within a sliding window.

    Counting failures only means a rightful user who types the password right is never locked out by their own
    successes; counting per address as well stops one client from guessing across many names.
    """

    def __init__(
        self, *, per_user: int = 5, per_address: int = 20, window_s: float = 300.0, max_keys: int = MAX_LIMITED_KEYS
    ) -> None:
        self.per_user = per_user
        self.per_address = per_address
        self.window_s = window_s
        self._max_keys = max_keys
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def retry_after(self, user: str, address: str) -> float:
        """Seconds until this user or address may try again; 0 when they may now."""
        now = time.monotonic()
        waits = [
            self._wait(f"user:{user.lower()}", self.per_user, now),
            self._wait(f"addr:{address}", self.per_address, now),
        ]
        return max(waits)

    def failed(self, user: str, address: str) -> None:
        now = time.monotonic()
        for key in (f"user:{user.lower()}", f"addr:{address}"):
            window = self._windows.pop(key, None) or _Window()
            window.failures.append(now)
            self._windows[key] = window
        while len(self._windows) > self._max_keys:
            self._windows.popitem(last=False)

    def _wait(self, key: str, limit: int, now: float) -> float:
        window = self._windows.get(key)
        if window is None:
            return 0.0
        while window.failures and window.failures[0] <= now - self.window_s:
            window.failures.popleft()
        if len(window.failures) < limit:
            return 0.0
        return window.failures[-limit] + self.window_s - now
