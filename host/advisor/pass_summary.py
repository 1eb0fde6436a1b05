"""One finished advisor pass as `npc-host status` and `npc-host advisor passes` list it.

The store keeps the full record (one writer: host/store/advisor_runs.py); the advisor also leaves these summaries in
its shared state, so that `npc-host status` shows the latest passes from Redis without opening the database (a
health check stays fast). Light on purpose: pydantic only.
"""

from __future__ import annotations

from pydantic import BaseModel


class PassSummary(BaseModel):
    pass_id: int
    server: str
    trigger: str
    outcome: str
    reason: str | None = None
    lines: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cache_hits: int = 0
    recommendations: int = 0
    seconds: float | None = None  # None: the pass never finished (the host stopped during it)
