"""Signed-in sessions and sign-in rate limits, kept in this process's memory.

A session is a random 256-bit token in an HttpOnly, SameSite=Strict cookie; its CSRF token is a second random value
the page sends back in the `X-CSRF-Token` header on every state-changing request. Both stores are capped: the oldest
entries go first, so no client can grow them without bound.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["admin", "operator", "viewer"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "operator": 1, "admin": 2}

MAX_SESSIONS = 10_000
MAX_LIMITED_KEYS = 50_000


@dataclass(frozen=True)
class Session:
    token: str
    user: str
    role: Role
    csrf: str
    expires_at: float

    def allows(self, needed: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[needed]


class SessionStore:
    def __init__(self, lifetime_s: float, *, max_sessions: int = MAX_SESSIONS) -> None:
        self.lifetime_s = lifetime_s
        self._max = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def open(self, user: str, role: Role) -> Session:
        session = Session(
            token=secrets.token_urlsafe(32),
            user=user,
            role=role,
            csrf=secrets.token_urlsafe(32),
            expires_at=time.time() + self.lifetime_s,
        )
        self._sessions[session.token] = session
        while len(self._sessions) > self._max:
            self._sessions.popitem(last=False)
        return session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        if session.expires_at < time.time():
            del self._sessions[token]
            return None
        return session

    def close(self, token: str) -> None:
        self._sessions.pop(token, None)

    def close_user(self, user: str) -> None:
        """End every session of `user` (their role changed or they were removed)."""
        for token in [token for token, session in self._sessions.items() if session.user == user]:
            del self._sessions[token]


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
