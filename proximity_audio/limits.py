"""What the bridge lets in: connections (with and without a hello), message size, players, microphone frame rate
and backlog, and how long a connection may be silent. docs/deploy.md lists them with their settings."""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field


class BridgeLimits(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_message_bytes: int = Field(262_144, ge=4096, le=16 * 2**20, description="larger messages close with 1009")
    max_players: int = Field(256, ge=1, le=65_536, description="players one connection may have joined at once")
    max_frames_per_second: int = Field(60, ge=50, le=1000, description="microphone frames per player (50 nominal)")
    frame_burst: int = Field(25, ge=1, le=1000, description="frames a player may send at once after a stall")
    max_gap_frames: int = Field(25, ge=0, le=500, description="missing frames filled with silence (more: restart)")
    stall_ms: int = Field(
        100,
        ge=20,
        le=2000,
        description="frames stopped this long mid-utterance: the player is silent from the last one",
    )
    idle_timeout_s: float = Field(60.0, gt=0, description="close (4008) when nothing arrives for this long")
    hello_timeout_s: float = Field(10.0, gt=0, description="close (4003) when no hello arrives within this")
    ping_interval_s: float = Field(20.0, gt=0, description="WebSocket keepalive ping interval")
    ping_timeout_s: float = Field(20.0, gt=0, description="close (1011) when a ping goes unanswered this long")
    outbox_ticks: int = Field(25, ge=2, le=10_000, description="20 ms ticks of audio queued per connection at most")
    min_token_chars: int = Field(16, ge=1, le=4096, description="a bridge token shorter than this refuses to start")
    max_unauthenticated: int = Field(192, ge=1, le=65_536, description="connections without a hello yet, in total")
    max_unauthenticated_per_address: int = Field(16, ge=1, le=65_536, description="the same, from one address")
    max_connections: int = Field(64, ge=1, le=65_536, description="plugin connections past their hello, in total")
    failed_hellos_per_address: int = Field(10, ge=1, le=10_000, description="wrong tokens before an address waits")
    failed_hello_window_s: float = Field(60.0, gt=0, description="window of that count, and of its refusal")
    max_pending_frames_per_player: int = Field(
        50, ge=10, le=10_000, description="microphone frames waiting for the VAD per player (oldest dropped)"
    )
    max_pending_frames: int = Field(
        20_000, ge=100, le=1_000_000, description="microphone frames waiting for the VAD in total (oldest dropped)"
    )


class FrameRateLimiter:
    """Token bucket: `rate` frames per second on average, up to `burst` at once."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._clock = clock
        self._last = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def charge(self, cost: int) -> None:
        """Count `cost` more units as let through; the bucket may go into debt, refusing what follows until repaid."""
        self._tokens -= cost
