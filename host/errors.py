"""Errors are data: a machine-readable code and a human message (STYLE.md, habit 8)."""

from __future__ import annotations


class NpcHostError(Exception):
    """Base error. `code` is stable for machines; `message` is for people and never holds a secret."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(NpcHostError):
    code = "config"


class EventValidationError(NpcHostError):
    """An event that cannot be accepted as it stands; the bus parks it in a dead-letter stream with this message.
    Here rather than in host.events so the hub's modules import without building the event models."""

    code = "event_invalid"


class NotReadyError(NpcHostError):
    """An expected, retryable state (a model still loading, a server restarting)."""

    code = "not_ready"
