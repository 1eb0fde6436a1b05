"""Logging for the `npc-host` commands: rich console output, and a last line of defence that masks secret values
(RCON passwords, API keys, URL passwords) should any code ever format one into a message."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from urllib.parse import urlsplit

from rich.logging import RichHandler

from host.config import Settings

MASK = "********"


class SecretMasker(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Short values would mask ordinary words; real secrets are longer.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        masked = message
        for secret in self._secrets:
            masked = masked.replace(secret, MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def secret_values(settings: Settings, password_envs: Iterable[str] = ()) -> list[str]:
    """The secret values this process knows: URL passwords, the API key, and the RCON passwords named by profiles."""
    values = [os.environ[name] for name in password_envs if os.environ.get(name)]
    if settings.llm.openai_api_key is not None:
        values.append(settings.llm.openai_api_key.get_secret_value())
    for url in (settings.redis_url, settings.database_url):
        if url is not None and (password := urlsplit(url.get_secret_value()).password):
            values.append(password)
    return values


def setup_logging(settings: Settings, password_envs: Iterable[str] = ()) -> None:
    handler = RichHandler(show_path=False, rich_tracebacks=False, markup=False)
    handler.addFilter(SecretMasker(secret_values(settings, password_envs)))
    logging.basicConfig(level=settings.log_level, format="%(name)s: %(message)s", handlers=[handler], force=True)
    for noisy in ("httpx", "httpcore", "watchfiles", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
